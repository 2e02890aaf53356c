// The web chat page: talks to POST /api/chat, shows later messages from GET /api/chat/events, and keeps the
// conversation in localStorage. Every text is shown with textContent, never parsed as HTML.
"use strict";

(function () {
  const STORE_KEY = "madoguchi.chat";
  const MAX_ITEMS = 200;  // what a reload shows; the server keeps the whole transcript
  const GREET = "intent:greet";
  const LANG_PREFIX = "lang:";
  const SIGNED_IN = "signin:done";  // handlers.identity.SIGNED_IN_PAYLOAD

  const root = document.getElementById("chat");
  const log = document.getElementById("log");
  const scroller = document.getElementById("conversation");
  const typing = document.getElementById("typing");
  const form = document.getElementById("composer");
  const input = document.getElementById("message");
  const sendButton = document.getElementById("send");
  const errorBox = document.getElementById("error");
  const strings = JSON.parse(document.getElementById("chat-strings").textContent);
  const pageLang = root.dataset.lang;
  const maxText = Number(root.dataset.maxText);
  const allowedOrigins = new Set([window.location.origin, originOf(root.dataset.baseUrl)]);

  let state = load();
  let events = null;
  let busy = false;

  function originOf(url) {
    try {
      return new URL(url).origin;
    } catch (error) {
      return window.location.origin;
    }
  }

  // An unguessable conversation id: later messages are fetched by it.
  function newUser() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function load() {
    try {
      const stored = JSON.parse(window.localStorage.getItem(STORE_KEY) || "null");
      if (stored && typeof stored.user === "string" && Array.isArray(stored.items)) {
        return stored;
      }
    } catch (error) {
      // A damaged entry starts a new conversation rather than breaking the page.
    }
    return null;
  }

  function save() {
    state.items = state.items.slice(-MAX_ITEMS);
    try {
      window.localStorage.setItem(STORE_KEY, JSON.stringify(state));
    } catch (error) {
      // Storage full or disabled: the chat still works, it just will not survive a reload.
    }
  }

  function fresh() {
    return {user: newUser(), lang: pageLang, last: 0, items: []};
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  // Only links to this site or to the configured BASE_URL become clickable (the sandbox payment page).
  function safeHref(url) {
    try {
      const parsed = new URL(url, window.location.href);
      if ((parsed.protocol === "http:" || parsed.protocol === "https:") && allowedOrigins.has(parsed.origin)) {
        return parsed.href;
      }
    } catch (error) {
      // not a URL: shown as text
    }
    return null;
  }

  // Phone numbers and mail addresses in the bot's answers (the contacts) are links a phone can call or mail;
  // everything else stays text (built as text nodes, never as markup).
  const CONTACT = /(0\d{1,4}-\d{1,4}-\d{3,4})|([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})/g;

  function textWithContacts(text) {
    const paragraph = element("p", "text");
    let last = 0;
    for (const match of String(text).matchAll(CONTACT)) {
      paragraph.appendChild(document.createTextNode(text.slice(last, match.index)));
      const anchor = element("a", "contact-link", match[0]);
      anchor.href = match[1] ? "tel:" + match[1].replace(/-/g, "") : "mailto:" + match[2];
      paragraph.appendChild(anchor);
      last = match.index + match[0].length;
    }
    paragraph.appendChild(document.createTextNode(String(text).slice(last)));
    return paragraph;
  }

  function senderName(item) {
    const name = {me: strings.you, bot: strings.bot, agent: strings.agent, note: strings.note}[item.who] || strings.bot;
    return item.author ? name + " " + item.author : name;
  }

  function renderCard(card) {
    const box = element("div", "card");
    box.appendChild(element("p", "card-title", card.title));
    const list = element("dl", "card-fields");
    for (const field of card.fields || []) {
      list.appendChild(element("dt", null, field.label));
      list.appendChild(element("dd", null, field.value));
    }
    box.appendChild(list);
    if (card.footer) {
      box.appendChild(element("p", "card-footer", card.footer));
    }
    return box;
  }

  function renderLink(link) {
    const href = safeHref(link.url);
    if (href === null) {
      return element("p", "link-text", link.label + ": " + link.url);
    }
    const anchor = element("a", "link-button", link.label);
    anchor.href = href;
    anchor.target = "_blank";
    anchor.rel = "noopener noreferrer";
    return anchor;
  }

  function renderButtons(buttons) {
    const group = element("div", "quick-replies");
    for (const button of buttons) {
      const node = element("button", "quick-reply", button.label);
      node.type = "button";
      node.addEventListener("click", () => tap(button));
      group.appendChild(node);
    }
    return group;
  }

  function clearButtons() {
    for (const group of log.querySelectorAll(".quick-replies")) {
      group.remove();
    }
  }

  function show(item, withButtons) {
    const row = element("li", "msg msg-" + item.who);
    row.appendChild(element("span", "sender", senderName(item)));
    const bubble = element("div", "bubble");
    if (item.card) {
      bubble.appendChild(renderCard(item.card));
    } else {
      bubble.appendChild(item.who === "me" ? element("p", "text", item.text) : textWithContacts(item.text || ""));
    }
    if (item.link) {
      bubble.appendChild(renderLink(item.link));
    }
    row.appendChild(bubble);
    if (withButtons && item.quick_replies && item.quick_replies.length) {
      row.appendChild(renderButtons(item.quick_replies));
    }
    log.appendChild(row);
    scroller.scrollTop = scroller.scrollHeight;
    return row;
  }

  function add(item) {
    if (item.who === "me") {
      clearButtons();
    }
    state.items.push(item);
    save();
    show(item, true);
  }

  function restore() {
    log.replaceChildren();
    state.items.forEach((item, index) => show(item, index === state.items.length - 1));
  }

  function setBusy(value) {
    busy = value;
    typing.hidden = !value;
    log.setAttribute("aria-busy", value ? "true" : "false");
    sendButton.disabled = value;
    if (value) {
      scroller.scrollTop = scroller.scrollHeight;
    }
  }

  function showError(text) {
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }

  // One message to the bot; `item` is the student's line as shown (its stored text becomes the masked copy).
  async function send(body, item) {
    setBusy(true);
    showError("");
    const user = state.user;
    try {
      const response = await fetch("/api/chat", {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify(Object.assign({user: user, lang: pageLang}, body)),
      });
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      const answer = await response.json();
      if (user !== state.user) {
        return;  // the student started over while this was on its way
      }
      if (item && typeof answer.said === "string") {
        item.text = answer.said;  // what the transcript keeps: a typed password is not stored in the browser
      }
      for (const reply of answer.replies || []) {
        add({who: "bot", text: reply.text, quick_replies: reply.quick_replies || [], link: reply.link || null,
             card: reply.card || null});
      }
      save();
    } catch (error) {
      showError(strings.failed);
    } finally {
      setBusy(false);
    }
  }

  function tap(button) {
    if (busy) {
      return;
    }
    add({who: "me", text: button.label});
    input.focus();
    const payload = String(button.payload);
    if (payload.startsWith(LANG_PREFIX)) {
      const target = payload.slice(LANG_PREFIX.length);
      send({payload: payload, lang: target}).then(() => switchPage(target));
      return;
    }
    send({payload: payload});
  }

  // The bot's own language button also switches the page's texts: the page reloads in that language.
  function switchPage(target) {
    if (target !== pageLang && (target === "ja" || target === "en")) {
      state.lang = target;
      save();
      window.location.assign("/?lang=" + target);
    }
  }

  function listen() {
    if (events) {
      events.close();
    }
    if (typeof window.EventSource !== "function") {
      return;
    }
    const url = "/api/chat/events?user=" + encodeURIComponent(state.user) + "&after=" + String(state.last || 0);
    events = new EventSource(url);
    events.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (typeof message.id !== "number" || message.id <= (state.last || 0)) {
        return;  // already shown
      }
      state.last = message.id;
      add({who: message.kind === "agent" ? "agent" : "note", text: message.text,
           author: typeof message.author === "string" ? message.author : undefined,
           quick_replies: Array.isArray(message.quick_replies) ? message.quick_replies : []});
    });
  }

  function begin() {
    state = fresh();
    save();
    log.replaceChildren();
    listen();
    return send({payload: GREET});  // the main menu on first open
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || busy) {
      return;
    }
    if (text.length > maxText) {
      showError(strings.too_long);
      return;
    }
    input.value = "";
    const item = {who: "me", text: text};
    add(item);
    send({text: text}, item);
  });

  document.getElementById("start-over").addEventListener("click", () => {
    if (window.confirm(strings.start_over_confirm)) {
      showError("");
      begin();
      input.focus();
    }
  });

  const signOut = document.getElementById("sign-out");
  if (signOut) {
    signOut.addEventListener("click", async () => {
      try {
        await fetch("/signout", {method: "POST"});
      } finally {
        window.location.assign("/?lang=" + pageLang);  // the page shows the chat as not signed in
      }
    });
  }

  // Back from the mailed sign-in link: the chat is told once, and goes on where it was.
  const params = new URLSearchParams(window.location.search);
  const signedIn = params.get("signed_in") === "1";
  if (signedIn) {
    params.delete("signed_in");
    const rest = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
  }

  if (state === null) {
    begin().then(() => signedIn ? send({payload: SIGNED_IN}) : null);
  } else {
    restore();
    listen();
    if (signedIn) {
      send({payload: SIGNED_IN});
    } else if (state.lang !== pageLang) {
      // The student switched the page's language: the conversation follows, and the bot says so.
      state.lang = pageLang;
      save();
      send({payload: LANG_PREFIX + pageLang});
    }
  }
}());
