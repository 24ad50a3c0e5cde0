/* 微站搜索：在浏览器里筛选构建时生成的 search.json。
 * 标题用与命令行 wx article list --title 相同的模糊搜索（连续出现优先，其次按顺序出现的字），
 * 摘要里包含关键词的排在其后；可按栏目和发布日期筛选。只用 ES5，兼容较旧的微信内置浏览器。 */
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
  var needle = "";
  var timer = null;

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  /* The CLI's 标题模糊搜索 (wxcli/fuzzy.py): a contiguous match beats any gapped one; among
   * contiguous ones an earlier position and a shorter title win; a gapped match (the query's
   * characters in order) loses points for every skipped character. null: no match. */
  function titleScore(title, needle) {
    var position = title.indexOf(needle);
    if (position >= 0) { return 1000 - position - 0.1 * (title.length - needle.length); }
    var best = null;
    for (var start = title.indexOf(needle.charAt(0)); start >= 0; start = title.indexOf(needle.charAt(0), start + 1)) {
      var gaps = gapsFrom(title, needle, start);
      if (gaps === null) { break; }
      best = best === null ? gaps : Math.min(best, gaps);
    }
    return best === null ? null : 500 - 5 * best - 0.1 * title.length;
  }

  function gapsFrom(title, needle, start) {
    var cursor = start + 1, gaps = 0;
    for (var i = 1; i < needle.length; i++) {
      var found = title.indexOf(needle.charAt(i), cursor);
      if (found < 0) { return null; }
      gaps += found - cursor;
      cursor = found + 1;
    }
    return gaps;
  }

  /* Title first (fuzzy, as in the CLI), then summaries that contain the query. */
  function score(item, needle) {
    var title = titleScore(normalise(item.t), needle);
    if (title !== null) { return title; }
    return normalise(item.s).indexOf(needle) >= 0 ? 100 : null;
  }

  function normalise(text) {
    return text.replace(/\s+/g, "").toLowerCase();
  }

  /* Marks the query in text: where it occurs whole, else its characters in order. */
  function highlight(text, needle) {
    if (!needle) { return escapeHtml(text); }
    var lower = text.toLowerCase();
    var at = lower.indexOf(needle);
    if (at >= 0) {
      return escapeHtml(text.slice(0, at)) + "<mark>" + escapeHtml(text.slice(at, at + needle.length)) + "</mark>" +
        escapeHtml(text.slice(at + needle.length));
    }
    var out = "", from = 0, next = 0;
    for (var i = 0; i < text.length; i++) {
      if (next < needle.length && lower.charAt(i) === needle.charAt(next)) {
        out += escapeHtml(text.slice(from, i)) + "<mark>" + escapeHtml(text.charAt(i)) + "</mark>";
        from = i + 1;
        next += 1;
      }
    }
    return next === needle.length ? out + escapeHtml(text.slice(from)) : escapeHtml(text);
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
    needle = normalise(query.q);
    matches = [];
    if (!needle && !query.column && !query.from && !query.to) {
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
      var value = needle ? score(item, needle) : 0;
      if (value !== null) { matches.push({ item: item, score: value, order: i }); }
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
      '<h2 class="card-title">' + highlight(item.t, needle) + "</h2>" +
      '<p class="card-summary">' + highlight(item.s, needle) + "</p>" +
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
