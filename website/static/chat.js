// The chat page: asks the website for a ticket, connects to the chat service, shows events, and
// reconnects by itself (website/README.md, "The chat page: tickets and reconnecting").
// Contract: chat/README.md (ticket, WebSocket events, close codes) and website/README.md (ticket endpoint). All text goes in
// with textContent; nothing from the network is ever parsed as HTML.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const texts = config.texts;
  const stateEl = document.querySelector('[data-testid="connection-state"]');
  const eventsEl = document.querySelector('[data-testid="messages"]');
  const onlineEl = document.querySelector('[data-testid="online"]');
  const onlineToggle = document.getElementById("online-toggle");
  const onlinePanel = document.getElementById("online-panel");
  const onlineCountEl = document.querySelector('[data-testid="online-count"]');
  const form = document.getElementById("composer");
  const input = document.querySelector('[data-testid="message-input"]');
  const sendButton = document.querySelector('[data-testid="send"]');
  const limitsEl = document.getElementById("limits");

  // Reconnecting: exponential backoff with jitter, each delay a random point in the upper half of
  // min(BACKOFF_MAX_MS, BACKOFF_BASE_MS × 2^attempt): 0.5–1 s, then 0.75–1.5 s for as long as it
  // takes.
  // The ceiling is how far a page may lag behind a chat that is back; it can be this short because
  // a retry while the chat is down costs no ticket (below), only a handshake nginx refuses at once.
  const BACKOFF_BASE_MS = 1000;
  const BACKOFF_MAX_MS = 1500;
  // The ticket the page holds between attempts. A ticket opens one socket; one whose handshake never
  // opened (the chat is down, restarting, or refused it) is tried again, so that a restart costs a
  // page one ticket, not one per retry: a room of many people behind one address (NAT) stays
  // inside nginx's per-address ticket limit. A fresh one is asked for once the held one has less
  // than TICKET_MARGIN_MS of its lifetime (`expires_in`, 60 s) left, that is after 45 s of
  // retries at most: a ticket the chat keeps refusing is replaced within bounded time, and the
  // ticket endpoint's 401 and 404 are heard again.
  const TICKET_MARGIN_MS = 15000;
  // After a socket opens with a ticket that was tried before, the page checks that its room is
  // still there (confirmRoom) at a random moment within this, so that a whole room coming back at
  // once does not ask the website all in the same second.
  const CONFIRM_SPREAD_MS = 5000;

  let socket = null;
  let ticket = null; // { token, wsPath, usableUntil (ms, this page's clock), handshakes }, or null
  let attempt = 0; // failed attempts since the last open connection
  let everOpened = false; // after the first open, every open is a reconnect with a gap
  let stopped = false; // no (re)connecting: the page is hidden, or finished
  let finished = false; // terminal: session gone, account gone or room deleted; never undone
  let retryTimer = null;
  // Open tabs per person, so a person with two tabs stays listed until the last one closes.
  const tabs = new Map();
  // People online as the chat service counts them. A burst summary names only a few people, so
  // the list may know fewer than this; the rest are shown as "and N more".
  let online = 0;
  // The presence lines a burst summary may take in (see showPresenceSummary):
  // { items, joined, joinedCount, left, leftCount, lastAt }, or null.
  let presenceRun = null;

  function t(key, values) {
    let text = texts[key] || key;
    for (const [name, value] of Object.entries(values || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  // Whether the message field had the focus when a dropped connection disabled it: only then is
  // it given back on reconnecting. Someone who was reading keeps their place, and a phone does
  // not open its keyboard by itself.
  let typingWhenDropped = true;

  function setState(state) {
    const open = state === "open";
    if (!open && stateEl.dataset.state === "open") {
      typingWhenDropped = document.activeElement === input;
    }
    stateEl.dataset.state = state;
    stateEl.textContent = t("chat_state_" + state);
    input.disabled = !open;
    sendButton.disabled = !open;
  }

  // Times in the page's language, not the browser's: a Russian page shows Russian times.
  const pageLang = config.lang || document.documentElement.lang || undefined;

  function formatTime(at) {
    const date = at ? new Date(at) : new Date();
    if (Number.isNaN(date.getTime())) return "";
    return date.toLocaleTimeString(pageLang, { hour: "2-digit", minute: "2-digit" });
  }

  // What a burst of events would otherwise redo for each one (a whole room reconnecting sends
  // every page a join per person) is done once per frame: the online list is rebuilt, and the log
  // measured and scrolled to its end, at most once per frame. Measuring the log after each
  // appended line made the browser lay it out again for every event.
  let frameRequested = false;
  let membersStale = false;
  let followLog = null; // whether the log was at its end before this frame's lines; null: unmeasured

  function requestFrame() {
    if (frameRequested) return;
    frameRequested = true;
    requestAnimationFrame(() => {
      frameRequested = false;
      if (membersStale) {
        membersStale = false;
        drawMembers();
      }
      if (followLog) eventsEl.scrollTop = eventsEl.scrollHeight;
      followLog = null;
    });
  }

  function addEvent(type, build) {
    const item = document.createElement("li");
    item.dataset.testid = "event";
    item.dataset.type = type;
    build(item);
    if (followLog === null) {
      followLog = eventsEl.scrollHeight - eventsEl.scrollTop - eventsEl.clientHeight < 40;
      requestFrame();
    }
    eventsEl.appendChild(item);
    if (type !== "joined" && type !== "left" && type !== "presence") presenceRun = null;
    return item;
  }

  function addNotice(type, text, at) {
    return addEvent(type, (item) => {
      if (at) {
        const time = document.createElement("span");
        time.className = "event-time";
        time.textContent = formatTime(at);
        item.appendChild(time);
      }
      item.appendChild(document.createTextNode(text));
    });
  }

  // A message is a bubble: author and time on top, the text below. The page's own user's
  // messages are marked `mine` (shown on the other side, in another colour).
  function addMessage(user, text, at) {
    addEvent("message", (item) => {
      if (user === config.me) item.classList.add("mine");
      const who = document.createElement("span");
      who.className = "event-user";
      who.dataset.testid = "event-user";
      who.textContent = user;
      const time = document.createElement("span");
      time.className = "event-time";
      time.textContent = formatTime(at);
      const meta = document.createElement("span");
      meta.className = "event-meta";
      meta.append(who, time);
      const body = document.createElement("span");
      body.className = "event-text";
      body.dataset.testid = "event-text";
      body.textContent = text;
      item.append(meta, body);
    });
  }

  function renderMembers() {
    membersStale = true;
    requestFrame();
  }

  function drawMembers() {
    onlineEl.replaceChildren();
    for (const email of [...tabs.keys()].sort()) {
      const li = document.createElement("li");
      li.dataset.testid = "member";
      li.textContent = email;
      li.title = email;
      if (email === config.me) li.className = "me";
      onlineEl.appendChild(li);
    }
    if (online > tabs.size) {
      const li = document.createElement("li");
      li.dataset.testid = "members-more";
      li.textContent = t("chat_online_more", { count: online - tabs.size });
      onlineEl.appendChild(li);
    }
    onlineCountEl.textContent = String(Math.max(online, tabs.size));
  }

  // The online list on a narrow screen: a panel over the messages, opened by the count button
  // and closed by it again, by Escape or by a click elsewhere. (A wide screen always shows the
  // list and hides the button; the stylesheet decides.)
  function setOnlinePanel(open) {
    onlineToggle.setAttribute("aria-expanded", String(open));
    onlinePanel.classList.toggle("open", open);
  }

  onlineToggle.addEventListener("click", () => {
    setOnlinePanel(onlineToggle.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && onlinePanel.classList.contains("open")) {
      setOnlinePanel(false);
      onlineToggle.focus();
    }
  });
  document.addEventListener("click", (event) => {
    const inside = onlinePanel.contains(event.target) || onlineToggle.contains(event.target);
    if (!inside && onlinePanel.classList.contains("open")) setOnlinePanel(false);
  });

  // Presence in a crowd (chat/README.md, "Presence in a crowd"): past a few joins or leaves at
  // once the chat service sends one `presence` summary per short window. The page shows a burst
  // as one line: a summary takes in the joined/left lines just before it (nothing else in
  // between, each within PRESENCE_MERGE_MS of the previous one), and the next summary of the same
  // burst replaces that line. The page's own arrival is never folded in.
  const PRESENCE_MERGE_MS = 2000;

  function currentRun() {
    const now = Date.now();
    if (!presenceRun || now - presenceRun.lastAt > PRESENCE_MERGE_MS) {
      presenceRun = { items: [], joined: [], joinedCount: 0, left: [], leftCount: 0, lastAt: now };
    }
    presenceRun.lastAt = now;
    return presenceRun;
  }

  // An individual joined/left line that a summary may fold in; a line about another tab of
  // someone already here (or gone for good) or about this page's own user starts no run.
  function notePresenceLine(item, user, joined, changesPerson) {
    if (!changesPerson || user === config.me) {
      presenceRun = null;
      return;
    }
    const run = currentRun();
    run.items.push(item);
    const names = joined ? run.joined : run.left;
    if (!names.includes(user)) names.push(user);
    if (joined) run.joinedCount += 1;
    else run.leftCount += 1;
  }

  // "Anna", "Anna and Boris", "Anna, Boris and Carl", "Anna, Boris and 37 others".
  function peopleList(names, count) {
    const shown = names.slice(0, count <= 3 ? count : 2);
    const parts = shown.slice();
    if (count > shown.length) parts.push(t("chat_presence_others", { count: count - shown.length }));
    if (parts.length === 1) return parts[0];
    return t("chat_presence_and", { list: parts.slice(0, -1).join(", "), last: parts[parts.length - 1] });
  }

  function presenceText(run) {
    const sentences = [];
    if (run.joinedCount > 0) {
      const key = run.joinedCount === 1 ? "chat_presence_joined_one" : "chat_presence_joined_many";
      sentences.push(t(key, { people: peopleList(run.joined, run.joinedCount) }));
    }
    if (run.leftCount > 0) {
      const key = run.leftCount === 1 ? "chat_presence_left_one" : "chat_presence_left_many";
      sentences.push(t(key, { people: peopleList(run.left, run.leftCount) }));
    }
    return sentences.join("; ");
  }

  function showPresenceSummary(event) {
    const joined = Array.isArray(event.joined) ? event.joined : [];
    const left = Array.isArray(event.left) ? event.left : [];
    for (const user of joined) if (!tabs.has(user)) tabs.set(user, 1);
    for (const user of left) tabs.delete(user);
    if (typeof event.online === "number") online = event.online;
    renderMembers();

    const run = currentRun();
    for (const user of joined) if (!run.joined.includes(user)) run.joined.push(user);
    for (const user of left) if (!run.left.includes(user)) run.left.push(user);
    run.joinedCount += Number(event.joined_count) || joined.length;
    run.leftCount += Number(event.left_count) || left.length;
    const text = presenceText(run);
    if (!text) return;
    for (const item of run.items) item.remove();
    run.items = [addNotice("presence", text, event.at)];
  }

  // Limits the chat service announces in `welcome`; the ones a person can act on are shown,
  // worded by the catalogue (unknown names are skipped rather than shown raw).
  const SHOWN_LIMITS = ["max_text_chars", "messages_per_second", "messages_burst"];

  function showLimits(limits) {
    if (!limits || typeof limits !== "object") return;
    const parts = SHOWN_LIMITS.filter((name) => typeof limits[name] === "number").map((name) =>
      t("chat_limit_" + name, { value: limits[name] }),
    );
    if (parts.length === 0) return;
    limitsEl.textContent = t("chat_limits") + " " + parts.join(", ") + ".";
    limitsEl.hidden = false;
  }

  // The chat service's close codes (chat/README.md, "Close codes") in the page's language; the
  // server's own (English) reason only for a code this page does not know.
  const CLOSE_REASONS = {
    1001: "chat_close_going_away",
    1002: "chat_close_protocol",
    1007: "chat_close_invalid_utf8",
    1008: "chat_close_policy",
    1009: "chat_close_too_big",
    4000: "chat_close_idle",
    4004: "chat_close_room_deleted",
    4008: "chat_close_too_slow",
  };

  function closeReason(event) {
    const key = CLOSE_REASONS[event.code];
    if (key) return t(key);
    return event.reason || t("chat_close_unknown", { code: event.code });
  }

  // An `error` event: the catalogue's text for its `code` (chat/README.md, "Error codes"), else
  // the server's message.
  function errorText(event) {
    const key = "chat_error_" + event.code;
    if (typeof event.code === "string" && Object.hasOwn(texts, key)) return texts[key];
    return t("chat_error", { message: event.message || event.code });
  }

  function handle(data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch (_) {
      return;
    }
    switch (event.type) {
      case "welcome":
        tabs.clear();
        for (const email of event.members || []) tabs.set(email, 1);
        online = tabs.size;
        renderMembers();
        showLimits(event.limits);
        addNotice("info", t("chat_welcome", { room: event.room }));
        break;
      case "joined":
        // `first` (an additive field of the chat service) says whether this is the person's first
        // tab; welcome counted everyone once, so a join is +1 unless it is a first tab.
        tabs.set(event.user, event.first === true ? 1 : (tabs.get(event.user) || 0) + 1);
        if (typeof event.online === "number") online = event.online;
        renderMembers();
        notePresenceLine(
          addNotice("joined", t("chat_joined", { user: event.user }), event.at),
          event.user,
          true,
          event.first !== false,
        );
        break;
      case "left": {
        const remaining = (tabs.get(event.user) || 1) - 1;
        if (event.last === true || (event.last !== false && remaining <= 0)) {
          tabs.delete(event.user);
        } else {
          tabs.set(event.user, Math.max(remaining, 1));
        }
        if (typeof event.online === "number") online = event.online;
        renderMembers();
        notePresenceLine(
          addNotice("left", t("chat_left", { user: event.user }), event.at),
          event.user,
          false,
          event.last !== false,
        );
        break;
      }
      case "presence":
        showPresenceSummary(event);
        break;
      case "message":
        addMessage(event.user, event.text, event.at);
        break;
      case "error":
        addNotice("error", errorText(event));
        break;
      case "room_deleted":
        // The owner deleted the room: the server closes with 4004 next. Stop here, before the
        // close, so nothing the page does meanwhile looks accepted.
        stop("chat_room_deleted");
        break;
      default:
        // Unknown event types are additive extensions: ignore them.
        break;
    }
  }

  function stop(messageKey) {
    if (finished) return;
    finished = true;
    stopped = true;
    clearTimeout(retryTimer);
    setState("closed");
    addNotice("error", t(messageKey));
  }

  function scheduleReconnect() {
    if (stopped) return;
    setState(everOpened ? "reconnecting" : "connecting");
    // Exponential backoff with full jitter, so many pages do not reconnect in lockstep.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    attempt += 1;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
  }

  async function fetchTicket() {
    const response = await fetch(config.ticket_url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": config.csrf_token, Accept: "application/json" },
    });
    if (response.status === 401) return { stop: "chat_session_expired" };
    if (response.status === 404) {
      // 404 means the room is gone, or the account is (website/README.md, ticket endpoint).
      const body = await response.json().catch(() => ({}));
      return { stop: body.error === "user_not_found" ? "error_user_not_found" : "chat_room_deleted" };
    }
    if (!response.ok) throw new Error("ticket request failed: " + response.status);
    const body = await response.json();
    // Counted from its arrival: the ticket was issued a little earlier, which the margin covers.
    const lifetimeMs = (Number(body.expires_in) || 0) * 1000;
    return {
      ticket: {
        token: body.token,
        wsPath: body.ws_path || "/ws",
        usableUntil: Date.now() + lifetimeMs - TICKET_MARGIN_MS,
        handshakes: 0,
      },
    };
  }

  function usable(held) {
    return held !== null && Date.now() < held.usableUntil;
  }

  // A socket opened with a ticket asked for before an earlier attempt that failed: the room may
  // have been deleted in between while the chat was down (its notice lost; a restarted chat knows
  // nothing of it), which a fresh ticket would have told (404). The chat page's own address
  // answers the same question: 404 when the room is gone, a redirect to the login page when the
  // session is. A HEAD request of it is no ticket, and no per-person or per-address ticket budget
  // pays for it.
  async function confirmRoom() {
    let response;
    try {
      response = await fetch(location.pathname, {
        method: "HEAD",
        credentials: "same-origin",
        redirect: "manual",
        cache: "no-store",
      });
    } catch (_) {
      return; // the website is unreachable: nothing learned, the chat goes on
    }
    const gone = response.status === 404 ? "chat_room_deleted" : null;
    const signedOut = response.type === "opaqueredirect" ? "chat_session_expired" : null;
    if (gone || signedOut) {
      stop(gone || signedOut);
      if (socket) socket.close(1000);
    }
  }

  async function connect() {
    if (stopped) return;
    if (!usable(ticket)) {
      ticket = null;
      let result;
      try {
        result = await fetchTicket();
      } catch (_) {
        scheduleReconnect();
        return;
      }
      if (stopped) return; // the page was left (or the chat ended) while the ticket came
      if (result.stop) {
        stop(result.stop);
        return;
      }
      ticket = result.ticket;
    }
    ticket.handshakes += 1;
    const reused = ticket.handshakes > 1;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + location.host + ticket.wsPath;
    // A browser cannot set headers on a WebSocket: the ticket travels as a subprotocol.
    const ws = new WebSocket(url, ["chat.v1", "bearer." + ticket.token]);
    socket = ws;

    ws.addEventListener("open", () => {
      // Spent: once a socket has been open, the next connection asks for a fresh ticket, so a
      // session or room that ended meanwhile is heard of (401, 404) before reconnecting.
      ticket = null;
      if (reused) setTimeout(confirmRoom, Math.random() * CONFIRM_SPREAD_MS);
      if (everOpened) addNotice("gap", t("chat_gap"));
      everOpened = true;
      attempt = 0;
      setState("open");
      if (typingWhenDropped) input.focus();
    });
    ws.addEventListener("message", (event) => {
      // Once the chat has ended for good (e.g. its room turned out to be deleted), nothing the
      // socket still delivers before it closes is shown.
      if (finished) return;
      if (typeof event.data === "string") handle(event.data);
    });
    ws.addEventListener("close", (event) => {
      if (socket !== ws) return;
      socket = null;
      tabs.clear();
      online = 0;
      renderMembers();
      // 1008: the server closed a page that kept sending refused frames. Reconnecting would
      // only repeat it, so the page stops and says why; a reload starts afresh.
      if (event.code === 1008) {
        stop("chat_stopped_policy");
        return;
      }
      // 4004: the room was deleted (its `room_deleted` event may have been lost on the way).
      if (event.code === 4004) {
        if (!finished) stop("chat_room_deleted");
        return;
      }
      // 1000 is our own close, 1006 is "dropped" (no reason to show); others are explained.
      if (event.code !== 1000 && event.code !== 1006 && event.code !== 1005) {
        addNotice("info", t("chat_closed_reason", { reason: closeReason(event) }));
      }
      scheduleReconnect();
    });
  }

  function send() {
    const text = input.value;
    if (!socket || socket.readyState !== WebSocket.OPEN || text.trim() === "") return;
    socket.send(JSON.stringify({ type: "message", text }));
    input.value = "";
    input.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  window.addEventListener("pagehide", () => {
    stopped = true;
    clearTimeout(retryTimer);
    if (socket) socket.close(1000);
  });
  window.addEventListener("pageshow", (event) => {
    // Back/forward cache restored the page: its socket is gone, connect afresh, unless the chat
    // had ended for good (session, account or room gone) before the page was left.
    if (event.persisted && !finished) {
      stopped = false;
      attempt = 0;
      connect();
    }
  });

  setState("connecting");
  connect();
})();
