/* 微站搜索：在浏览器里筛选构建时生成的 search.json。
 * 关键词匹配标题或摘要中的连续文字，或按顺序出现在标题中的字（模糊搜索）；
 * 可按栏目和发布日期筛选。只用 ES5，兼容较旧的微信内置浏览器。 */
(function () {
  "use strict";
  var PAGE = 20;
  var form = document.getElementById("search-form");
  if (!form) { return; }
  var fields = {
    q: document.getElementById("search-q"),
    column: document.getElementById("search-column"),
    from: document.getElementById("search-from"),
    to: document.getElementById("search-to")
  };
  var statusBox = document.getElementById("search-status");
  var list = document.getElementById("search-results");
  var more = document.getElementById("search-more");
  var index = null;
  var columnTitles = {};
  var matches = [];
  var shown = 0;
  var terms = [];
  var timer = null;

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  /* Every character of needle appears in hay, in order (e.g. 房贷利率 ~ 个人住房贷款利率调整). */
  function inOrder(hay, needle) {
    var at = 0;
    for (var i = 0; i < needle.length; i++) {
      at = hay.indexOf(needle.charAt(i), at);
      if (at < 0) { return false; }
      at += 1;
    }
    return true;
  }

  function scoreTerm(item, term) {
    var title = item.t.toLowerCase();
    if (title.indexOf(term) >= 0) { return 3; }
    if (item.s.toLowerCase().indexOf(term) >= 0) { return 2; }
    if (term.length > 1 && inOrder(title, term)) { return 1; }
    return 0;
  }

  function highlight(text, words) {
    var lower = text.toLowerCase();
    var marks = [];
    for (var w = 0; w < words.length; w++) {
      var from = 0, at;
      while (words[w] && (at = lower.indexOf(words[w], from)) >= 0) {
        marks.push([at, at + words[w].length]);
        from = at + words[w].length;
      }
    }
    marks.sort(function (a, b) { return a[0] - b[0]; });
    var out = "", pos = 0;
    for (var m = 0; m < marks.length; m++) {
      if (marks[m][0] < pos) { continue; }
      out += escapeHtml(text.slice(pos, marks[m][0])) + "<mark>" + escapeHtml(text.slice(marks[m][0], marks[m][1])) + "</mark>";
      pos = marks[m][1];
    }
    return out + escapeHtml(text.slice(pos));
  }

  function readForm() {
    return {
      q: fields.q.value.replace(/^\s+|\s+$/g, ""),
      column: fields.column.value,
      from: fields.from.value,
      to: fields.to.value
    };
  }

  function run() {
    if (!index) { return; }
    var query = readForm();
    terms = query.q ? query.q.toLowerCase().split(/\s+/) : [];
    matches = [];
    if (!terms.length && !query.column && !query.from && !query.to) {
      statusBox.textContent = "输入关键词，或选择栏目、发布日期。";
      list.innerHTML = "";
      more.hidden = true;
      return;
    }
    var articles = index.articles;
    for (var i = 0; i < articles.length; i++) {
      var item = articles[i];
      if (query.column && item.c !== query.column) { continue; }
      if (query.from && item.d < query.from) { continue; }
      if (query.to && item.d > query.to) { continue; }
      var score = 0, ok = true;
      for (var t = 0; t < terms.length && ok; t++) {
        var s = scoreTerm(item, terms[t]);
        if (!s) { ok = false; }
        score += s;
      }
      if (ok) { matches.push({ item: item, score: score, order: i }); }
    }
    matches.sort(function (a, b) { return b.score - a.score || a.order - b.order; });
    statusBox.textContent = matches.length ? "找到 " + matches.length + " 篇文章" : "没有找到相关文章，换个词试试。";
    list.innerHTML = "";
    shown = 0;
    showMore();
  }

  function card(item) {
    var column = columnTitles[item.c] ? " · " + escapeHtml(columnTitles[item.c]) : "";
    return '<li class="card"><a class="card-link" href="' + escapeHtml(item.u) + '"><div class="card-text">' +
      '<h2 class="card-title">' + highlight(item.t, terms) + "</h2>" +
      '<p class="card-summary">' + highlight(item.s, terms) + "</p>" +
      '<p class="card-meta"><time>' + escapeHtml(item.d) + "</time>" + column + "</p></div></a></li>";
  }

  function showMore() {
    var html = "";
    var end = Math.min(shown + PAGE, matches.length);
    for (var i = shown; i < end; i++) { html += card(matches[i].item); }
    list.insertAdjacentHTML("beforeend", html);
    shown = end;
    more.hidden = shown >= matches.length;
  }

  function remember() {
    if (!window.history || !history.replaceState) { return; }
    var query = readForm(), parts = [];
    for (var key in query) {
      if (query[key]) { parts.push(key + "=" + encodeURIComponent(query[key])); }
    }
    history.replaceState(null, "", location.pathname + (parts.length ? "?" + parts.join("&") : ""));
  }

  function fillFromUrl() {
    var pairs = location.search.replace(/^\?/, "").split("&");
    for (var i = 0; i < pairs.length; i++) {
      var pair = pairs[i].split("=");
      var field = fields[pair[0]];
      if (field && pair.length > 1) {
        try { field.value = decodeURIComponent(pair[1].replace(/\+/g, " ")); } catch (e) { field.value = ""; }
      }
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(function () { remember(); run(); }, 150);
  }

  function load() {
    statusBox.textContent = "正在加载搜索索引…";
    var request = new XMLHttpRequest();
    request.open("GET", form.getAttribute("data-index"));
    request.onload = function () {
      if (request.status !== 200) { statusBox.textContent = "搜索索引加载失败，请稍后再试。"; return; }
      try { index = JSON.parse(request.responseText); } catch (e) { statusBox.textContent = "搜索索引已损坏。"; return; }
      for (var i = 0; i < index.columns.length; i++) { columnTitles[index.columns[i].slug] = index.columns[i].title; }
      run();
    };
    request.onerror = function () { statusBox.textContent = "搜索索引加载失败，请检查网络。"; };
    request.send();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    remember();
    run();
    fields.q.blur();
  });
  fields.q.addEventListener("input", schedule);
  fields.column.addEventListener("change", schedule);
  fields.from.addEventListener("change", schedule);
  fields.to.addEventListener("change", schedule);
  more.addEventListener("click", showMore);
  fillFromUrl();
  load();
})();
