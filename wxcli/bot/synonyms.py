"""The bank-domain synonym groups every project starts with.

A project extends them in ``flows/synonyms.yml`` (a YAML list of lists); groups
sharing a word are merged, and the first word of the merged group is the
canonical form. Only words that mean the same in a bank's conversation belong
here — a loose synonym turns a right answer into a wrong one.
"""

from __future__ import annotations

BUILTIN_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("房贷", "按揭", "住房贷款", "房屋贷款", "购房贷款", "按揭贷款"),
    ("信用卡", "贷记卡"),
    ("借记卡", "储蓄卡", "银行卡"),
    ("挂失", "丢失", "遗失", "丢了", "弄丢", "掉了"),
    ("转账", "汇款", "转钱", "汇钱", "打钱"),
    ("利率", "利息", "息率"),
    ("手续费", "服务费"),
    ("网点", "营业厅", "营业网点", "支行"),
    ("开户", "开立账户"),
    ("销户", "注销账户", "销卡"),
    ("贷款", "借款"),
    ("还款", "还钱", "还贷"),
    ("提前还款", "提前还贷", "提前结清"),
    ("分期", "分期付款"),
    ("征信", "信用报告", "征信报告"),
    ("公积金", "住房公积金"),
    ("定期", "定存", "定期存款"),
    ("手机银行", "掌上银行", "手机app", "银行app"),
    ("网银", "网上银行"),
    ("诈骗", "骗局", "欺诈"),
    ("盗刷", "被盗刷"),
    ("密码", "口令"),
    ("验证码", "动态码", "短信验证码"),
)
