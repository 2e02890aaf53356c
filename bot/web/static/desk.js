/* The agents' inbox, live (a static file: the CSP allows no inline script).
   One EventSource on /admin/inbox/events tells every signed-in /admin page how many tickets wait: the count goes
   into the title and the navigation's badge, and a new ticket is announced politely. On the queue and on a
   ticket's page, the live part (the element with data-fragment) is fetched again when the desk changes; the
   forms outside it, and a reply being written, are never touched. */
(function () {
  "use strict";

  var strings = {};
  try {
    strings = JSON.parse(document.getElementById("desk-strings").textContent);
  } catch (ignored) {
    strings = {};
  }
  var body = document.body;
  var live = document.querySelector("[data-fragment]");
  var announcer = document.getElementById("desk-announce");
  var revision = live ? Number(live.getAttribute("data-revision")) : null;
  // The count the page was drawn with; unknown (null) on a page that shows none, where nothing is announced
  // until the stream has told one.
  var waiting = body.hasAttribute("data-waiting") ? Number(body.getAttribute("data-waiting")) : null;
  var loading = false;
  var again = false;

  function fill(template, values) {
    return String(template || "").replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  function announce(text) {
    if (!announcer || !text) {
      return;
    }
    // Emptied first, so the same words said twice are announced twice.
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 100);
  }

  function showCount(count) {
    var title = document.title.replace(/^\(\d+\) /, "");
    // The inbox's pages always carry the count; elsewhere it appears only while tickets wait.
    document.title = body.hasAttribute("data-count-title") || count > 0 ? "(" + count + ") " + title : title;
    var badge = document.getElementById("desk-badge");
    if (badge) {
      badge.textContent = fill(strings["staff.waiting_badge"], {count: count});
      badge.hidden = count === 0;
    }
  }

  function focusKey(element) {
    if (!element || !live.contains(element)) {
      return null;
    }
    return element.id ? "#" + element.id : element.getAttribute("href");
  }

  function refocus(key) {
    if (!key) {
      return;
    }
    var target = key.charAt(0) === "#" ? document.getElementById(key.slice(1))
      : live.querySelector('a[href="' + key + '"]');
    if (target) {
      target.focus();
    }
  }

  function swap(html) {
    var focused = focusKey(document.activeElement);
    var before = live.querySelectorAll(".tl-student").length;
    live.innerHTML = html;
    refocus(focused);
    if (live.querySelectorAll(".tl-student").length > before) {
      announce(strings["inbox.new_message"]);
    }
    var state = live.querySelector("[data-status]");
    var actions = document.getElementById("actions");
    if (state && actions && state.getAttribute("data-status") === "resolved") {
      actions.hidden = true;  // closed meanwhile (by another agent, or the student stopped waiting)
    }
  }

  function refresh() {
    if (!live) {
      return;
    }
    if (loading) {
      again = true;  // a change during the fetch: fetch once more after it
      return;
    }
    loading = true;
    window.fetch(live.getAttribute("data-fragment"), {credentials: "same-origin", cache: "no-store"})
      .then(function (response) {
        if (response.redirected || !response.ok) {
          throw new Error("the live part answered " + response.status);
        }
        return response.text();
      })
      .then(swap)
      .catch(function () { /* the next change tries again */ })
      .then(function () {
        loading = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  function onDesk(event) {
    var desk;
    try {
      desk = JSON.parse(event.data);
    } catch (ignored) {
      return;
    }
    if (waiting !== null && desk.waiting > waiting) {
      announce(fill(strings["inbox.new_ticket"], {count: desk.waiting}));
    }
    showCount(desk.waiting);
    if (revision !== null && desk.revision !== revision) {
      refresh();
    }
    revision = desk.revision;
    waiting = desk.waiting;
  }

  function insertCanned() {
    var select = document.getElementById("canned");
    var insert = document.getElementById("canned-insert");
    var reply = document.getElementById("reply-text");
    if (!select || !insert || !reply) {
      return;
    }
    insert.hidden = false;  // without the script, the form's own button sends the canned reply as it is
    insert.addEventListener("click", function () {
      var option = select.options[select.selectedIndex];
      if (!option) {
        return;
      }
      var text = option.getAttribute("data-text") || option.text;
      reply.value = reply.value.trim() ? reply.value.replace(/\s+$/, "") + "\n" + text : text;
      reply.focus();
      reply.setSelectionRange(reply.value.length, reply.value.length);
    });
  }

  insertCanned();
  if (typeof window.EventSource === "function") {
    new window.EventSource("/admin/inbox/events").addEventListener("desk", onDesk);
  }
}());
