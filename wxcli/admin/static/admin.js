/* wx admin: the few behaviours a page needs; no framework, nothing fetched from outside. */
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function post(url, body) {
    return fetch(url, { method: "POST", body: body, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" })
      .then(function (r) {
        return r.text().then(function (text) {
          var data;
          try { data = JSON.parse(text); } catch (e) {
            data = { error: r.status === 401 ? "登录已失效：请用 wx admin 启动时打印的链接重新登录（你写的内容已存在本浏览器里）"
                                             : "请求没有完成（HTTP " + r.status + "）" };
          }
          data.status = r.status;
          return data;
        });
      });
  }

  // ------------------------------------------------------------ chat pane
  var chat = document.getElementById("chat");
  function openChat() { if (chat) { chat.hidden = false; document.getElementById("chat-input").focus(); } }
  function say(text, who) {
    var item = document.createElement("li");
    item.className = who;
    item.textContent = text;
    document.getElementById("chat-log").appendChild(item);
    item.scrollIntoView({ block: "end" });
  }
  function ask(text) {
    openChat();
    say(text, "me");
    var body = new FormData();
    body.append("text", text);
    post("/api/ask", body).then(function (data) {
      if (data.error) { say(data.error, "bot error"); return; }
      say(data.text + (data.unanswered ? "\n（未能回答：" + data.rule + "）" : "\n（" + data.rule + (data.answer ? " · " + data.answer : "") + "）"), "bot");
    }).catch(function () { say("连接 wx admin 失败", "bot error"); });
  }
  if (chat) {
    document.getElementById("chat-toggle").addEventListener("click", function () { chat.hidden ? openChat() : (chat.hidden = true); });
    document.getElementById("chat-close").addEventListener("click", function () { chat.hidden = true; });
    document.getElementById("chat-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var input = document.getElementById("chat-input");
      if (input.value.trim()) { ask(input.value.trim()); input.value = ""; }
    });
    document.querySelectorAll(".ask-again").forEach(function (button) {
      button.addEventListener("click", function () { ask(button.dataset.text); });
    });
  }

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
  });

  // ------------------------------------------------------------ article list: select, bulk, delete dialog
  var bulk = document.getElementById("bulk");
  if (bulk) {
    var all = document.getElementById("check-all");
    var boxes = function () { return Array.prototype.slice.call(bulk.querySelectorAll('input[name="ref"]')); };
    all.addEventListener("change", function () { boxes().forEach(function (b) { b.checked = all.checked; }); });
    var dialog = document.getElementById("confirm-delete");
    bulk.addEventListener("submit", function (event) {
      var ticked = boxes().filter(function (b) { return b.checked; });
      var action = event.submitter ? event.submitter.value : "";
      if (!ticked.length) { event.preventDefault(); window.alert("请先勾选文章"); return; }
      if (action !== "delete" || bulk.confirmed.value === "yes") return;
      event.preventDefault();
      var list = document.getElementById("confirm-list");
      list.textContent = "";
      ticked.forEach(function (b) {
        var item = document.createElement("li");
        item.textContent = b.dataset.title;
        list.appendChild(item);
      });
      dialog.returnValue = "";
      dialog.showModal();
    });
    dialog.addEventListener("close", function () {
      if (dialog.returnValue !== "ok") return;
      bulk.confirmed.value = "yes";
      var action = document.createElement("input");
      action.type = "hidden"; action.name = "action"; action.value = "delete";
      bulk.appendChild(action);
      bulk.submit();
    });
  }

  // ------------------------------------------------------------ the editor
  var form = document.getElementById("article-form");
  if (!form) return;
  var body = document.getElementById("body");
  var frame = document.getElementById("preview");
  var problems = document.getElementById("preview-problems");
  var status = document.getElementById("upload-status");
  var dirty = false, timer = null, sequence = 0;

  function refresh() {
    var mine = ++sequence;
    post("/api/preview", new FormData(form)).then(function (data) {
      if (mine !== sequence) return;
      problems.textContent = "";
      (data.error ? [data.error] : data.problems || []).forEach(function (text) {
        var item = document.createElement("li");
        item.textContent = text;
        problems.appendChild(item);
      });
      if (data.html) frame.srcdoc = data.html;
      frame.dataset.version = String(mine);
    });
  }
  // A copy of the form in this browser, so nothing typed is lost to an expired session or a closed tab.
  var draftKey = "wx-admin-draft:" + form.getAttribute("action");
  var skipped = { csrf: true, original: true };
  function fields() {
    var found = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || skipped[el.name]) return;
      found[el.name] = el.type === "checkbox" ? el.checked : el.value;
    });
    return found;
  }
  function backup() {
    try { localStorage.setItem(draftKey, JSON.stringify({ at: Date.now(), fields: fields() })); } catch (e) { /* storage full or off */ }
  }
  function storedDraft() {
    try { return JSON.parse(localStorage.getItem(draftKey) || "null"); } catch (e) { return null; }
  }
  if (form.dataset.saved) {
    localStorage.removeItem(draftKey);
    var created = JSON.parse(localStorage.getItem("wx-admin-draft:/articles/new") || "null");
    if (created && created.fields.title === fields().title) localStorage.removeItem("wx-admin-draft:/articles/new");
  } else {
    var draft = storedDraft();
    if (draft && JSON.stringify(draft.fields) !== JSON.stringify(fields())) {
      document.getElementById("draft-time").textContent = new Date(draft.at).toLocaleString("zh-CN");
      document.getElementById("draft-found").hidden = false;
    }
  }
  document.getElementById("draft-restore").addEventListener("click", function () {
    var draft = storedDraft();
    if (!draft) return;
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || skipped[el.name] || !(el.name in draft.fields)) return;
      if (el.type === "checkbox") el.checked = draft.fields[el.name]; else el.value = draft.fields[el.name];
    });
    document.getElementById("draft-found").hidden = true;
    changed();
  });
  document.getElementById("draft-discard").addEventListener("click", function () {
    localStorage.removeItem(draftKey);
    document.getElementById("draft-found").hidden = true;
  });

  function changed() { dirty = true; backup(); clearTimeout(timer); timer = setTimeout(refresh, 300); }
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  form.addEventListener("submit", function () { dirty = false; });
  window.addEventListener("beforeunload", function (event) { if (dirty) { event.preventDefault(); event.returnValue = ""; } });
  refresh();

  function insert(before, after, placeholder) {
    var start = body.selectionStart, end = body.selectionEnd;
    var chosen = body.value.slice(start, end) || placeholder || "";
    body.setRangeText(before + chosen + (after || ""), start, end, "end");
    if (start === end && placeholder) {  // select the placeholder, so typing replaces it
      body.setSelectionRange(start + before.length, start + before.length + chosen.length);
    }
    body.focus();
    changed();
  }
  function atLineStart(prefix, placeholder) {
    var start = body.selectionStart;
    var needsBreak = start > 0 && body.value[start - 1] !== "\n";
    insert((needsBreak ? "\n" : "") + prefix, "", placeholder);
  }
  var actions = {
    h2: function () { atLineStart("## ", "小节标题"); },
    h3: function () { atLineStart("### ", "小标题"); },
    bold: function () { insert("**", "**", "加粗的文字"); },
    ul: function () { atLineStart("- ", "列表项"); },
    ol: function () { atLineStart("1. ", "第一项"); },
    table: function () { atLineStart("| 项目 | 说明 |\n| --- | --- |\n| ", " |  |\n", "内容"); },
    link: function () { openPicker(); },
    image: function () { document.getElementById("image-file").click(); }
  };
  form.querySelectorAll("[data-md]").forEach(function (button) {
    button.addEventListener("click", function () { actions[button.dataset.md](); });
  });

  var maxUpload = Number(form.dataset.maxUpload || 0);
  function upload(file) {
    if (maxUpload && file.size > maxUpload) {
      status.textContent = "图片未保存：" + (file.name || "图片") + " 有 " + (file.size / 1048576).toFixed(1) + " MB，上限 " + Math.round(maxUpload / 1048576) + " MB";
      return;
    }
    var data = new FormData();
    data.append("image", file, file.name || "image.png");
    status.textContent = "正在上传 " + (file.name || "图片") + "…";
    post("/api/upload", data).then(function (reply) {
      if (reply.error) { status.textContent = "图片未保存：" + reply.error; return; }
      status.textContent = "已保存到 content/" + reply.path;
      insert("\n" + reply.markdown + "\n", "", "");
    }).catch(function () { status.textContent = "图片上传失败"; });
  }
  document.getElementById("image-file").addEventListener("change", function (event) {
    Array.prototype.forEach.call(event.target.files, upload);
    event.target.value = "";
  });
  body.addEventListener("paste", function (event) {
    var files = Array.prototype.filter.call((event.clipboardData || {}).files || [], function (f) { return /^image\//.test(f.type); });
    if (files.length) { event.preventDefault(); files.forEach(upload); }
  });
  body.addEventListener("dragover", function (event) { event.preventDefault(); });
  body.addEventListener("drop", function (event) {
    var files = Array.prototype.filter.call(event.dataTransfer.files || [], function (f) { return /^image\//.test(f.type); });
    if (files.length) { event.preventDefault(); files.forEach(upload); }
  });

  var picker = document.getElementById("link-picker");
  var search = document.getElementById("link-search");
  var list = document.getElementById("link-list");
  var lookup = null;
  function openPicker() { search.value = ""; find(); picker.showModal(); search.focus(); }
  function find() {
    var mine = lookup = {};
    fetch("/api/titles?q=" + encodeURIComponent(search.value), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (found) {
        if (mine !== lookup) return;
        list.textContent = "";
        found.forEach(function (article) {
          var item = document.createElement("li");
          var button = document.createElement("button");
          button.type = "button";
          button.textContent = article.title + (article.draft ? "（草稿）" : "");
          button.addEventListener("click", function () {
            picker.close();
            insert("[" + article.title + "](../" + article.ref + ".md)", "", "");
          });
          item.appendChild(button);
          list.appendChild(item);
        });
        if (!found.length) { list.innerHTML = '<li class="muted">没有标题匹配的文章</li>'; }
      });
  }
  search.addEventListener("input", find);
})();
