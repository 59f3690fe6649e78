// Rally Bridge playground: plain JS, no build step. Every value from the server is shown with textContent
// (or as an attribute set through the DOM), never parsed as HTML: participant text is hostile.
"use strict";

const POLL_MS = 700;
const $ = (id) => document.getElementById(id);
const ui = { viewer: "", participant: "", thread: "", lastBody: "", data: null, busy: false };

// ---- small DOM helpers -------------------------------------------------------------------------------------

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function clock(date) {
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

function timeOf(ts) {
  return clock(new Date(Number(String(ts).split(".")[0]) * 1000));
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

// ---- Slack mrkdwn, as Slack shows it --------------------------------------------------------------------------

// Slack escapes &, < and > in text; a raw <...> is a control sequence (link, mention, date).
function unescapeSlack(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

const SAFE_LINK = /^(https?:\/\/|mailto:)/i;

function formatted(text) {
  // *bold*, _italic_, ~strike~, `code`: each becomes an element holding plain text.
  const out = [];
  const pattern = /(\*[^*\n]+\*|_[^_\n]+_|~[^~\n]+~|`[^`\n]+`)/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) out.push(unescapeSlack(text.slice(last, match.index)));
    const token = match[0];
    const inner = unescapeSlack(token.slice(1, -1));
    const tag = { "*": "strong", _: "em", "~": "s", "`": "code" }[token[0]];
    out.push(el(tag, { text: inner }));
    last = match.index + token.length;
  }
  if (last < text.length) out.push(unescapeSlack(text.slice(last)));
  return out;
}

function controlSequence(inner, users) {
  const [target, ...rest] = inner.split("|");
  const label = rest.join("|");
  if (target.startsWith("@")) {
    const id = target.slice(1);
    return el("span", { className: "mention", text: "@" + (users[id] || label || id) });
  }
  if (target.startsWith("#")) return el("span", { className: "mention", text: "#" + (label || target.slice(1)) });
  if (target.startsWith("!date^")) return unescapeSlack(label || target);
  if (target.startsWith("!")) return el("span", { className: "mention broadcast", text: "@" + target.slice(1) });
  const url = unescapeSlack(target);
  if (!SAFE_LINK.test(url)) return unescapeSlack(label || target);
  return el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: unescapeSlack(label || target) });
}

function mrkdwn(text, users) {
  const out = [];
  const pattern = /<([^<>\n]*)>/g;
  let last = 0;
  for (const match of String(text || "").matchAll(pattern)) {
    if (match.index > last) out.push(...formatted(text.slice(last, match.index)));
    out.push(controlSequence(match[1], users));
    last = match.index + match[0].length;
  }
  if (last < String(text || "").length) out.push(...formatted(text.slice(last)));
  return out;
}

function textObject(obj, users) {
  if (!obj || typeof obj.text !== "string") return [];
  return obj.type === "mrkdwn" ? mrkdwn(obj.text, users) : [obj.text];
}

function messageBody(message, users) {
  const blocks = Array.isArray(message.blocks) ? message.blocks : null;
  if (!blocks || blocks.length === 0) return el("div", { className: "body" }, mrkdwn(message.text, users));
  const body = el("div", { className: "body" });
  for (const block of blocks) {
    if (block.type === "section") {
      body.append(el("div", { className: "section" }, textObject(block.text, users)));
      for (const field of block.fields || []) body.append(el("div", { className: "field" }, textObject(field, users)));
    } else if (block.type === "context") {
      body.append(el("div", { className: "context" }, (block.elements || []).map((e) => textObject(e, users))));
    } else if (block.type === "header") {
      body.append(el("div", { className: "header" }, textObject(block.text, users)));
    } else if (block.type === "divider") {
      body.append(el("hr"));
    }
  }
  return body;
}

// ---- panes ----------------------------------------------------------------------------------------------

function renderStatus(data) {
  const bridge = data.bridge;
  const ready = $("ready");
  ready.textContent = bridge.ready ? "bridge ready" : "bridge not ready";
  ready.className = "pill " + (bridge.ready ? "ok" : "bad");
  ready.title = `GET ${bridge.url}/readyz ${bridge.detail || ""}`;
  for (const node of document.querySelectorAll("[data-metric]")) {
    const value = bridge.metrics ? bridge.metrics[node.dataset.metric] : undefined;
    node.textContent = value === undefined ? "?" : String(Math.round(value));
  }
  $("outage").checked = data.respondent_down;
  document.body.classList.toggle("respondent-down", data.respondent_down);
  const hours = data.clock.offset_hours;
  const offset = $("clock-offset");
  offset.textContent = hours ? `bridge clock +${hoursText(hours)} h` : "bridge clock: real time";
  offset.className = "pill" + (hours ? " moved" : "");
  const bridgeNow = new Date(data.clock.now);
  offset.title = Number.isNaN(bridgeNow.getTime())
    ? ""
    : `The bridge's time: ${bridgeNow.toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone: "Europe/Berlin" })} in Berlin`;
}

function hoursText(hours) {
  return Number.isInteger(hours) ? String(hours) : hours.toFixed(1);
}

function fillSelect(select, options, current) {
  const wanted = options.map((o) => o.value + "\u0000" + o.label).join("\u0001");
  if (select.dataset.options !== wanted) {
    select.replaceChildren(...options.map((o) => el("option", { value: o.value, text: o.label })));
    select.dataset.options = wanted;
  }
  if (options.some((o) => o.value === current)) select.value = current;
  return select.value;
}

function renderParticipant(data) {
  const writers = data.participants.filter((p) => p.can_write);
  const options = writers.map((p) => ({
    value: p.id,
    label: `${p.name} (${p.approval === "APPROVED" ? "approved" : "not approved yet"})`,
  }));
  ui.participant = fillSelect($("participant-select"), options, ui.participant);
  const me = writers.find((p) => p.id === ui.participant);
  const inbox = $("inbox");
  const approved = Boolean(me) && me.approval === "APPROVED";
  $("participant-read").disabled = !approved || me.inbox.length === 0;
  $("participant-read-state").textContent = !me || me.inbox.length === 0 ? "" : me.read ? "All read" : "Unread messages";
  if (!me) {
    inbox.replaceChildren(el("p", { className: "empty", text: "No participant recruited through Respondent." }));
    return;
  }
  $("participant-note").textContent =
    me.approval === "APPROVED"
      ? "Your messages go to the research team's Slack thread."
      : "Not approved yet: what you write waits until Rally approves you, then appears in order.";
  const bubbles = me.inbox.map((m) =>
    el(
      "div",
      { className: "bubble " + m.from, dataset: { uid: m.uid } },
      el("span", { className: "who", text: m.from === "participant" ? "You" : "Research team" }),
      el("span", { className: "body", text: m.body }),
    ),
  );
  if (bubbles.length === 0) bubbles.push(el("p", { className: "empty", text: "No messages yet. Say hello!" }));
  inbox.replaceChildren(...bubbles);
}

function isRoot(m) {
  return !m.thread_ts || m.thread_ts === m.ts;
}

function slackMessage(m, users, { inThread = false, clickable = true } = {}) {
  const name = m.is_bot ? "Rally Bridge" : m.user_name;
  const header = el(
    "div",
    { className: "meta" },
    el("span", { className: "name", text: name }),
    m.is_bot ? el("span", { className: "app", text: "APP" }) : null,
    el("span", { className: "time", text: timeOf(m.ts) }),
    m.edited ? el("span", { className: "edited", text: "(edited)" }) : null,
  );
  const reactions = el(
    "div",
    { className: "reactions" },
    m.reactions.map((r) => el("span", { className: "reaction", dataset: { reaction: r.name }, title: `:${r.name}:`, text: r.emoji + " 1" })),
  );
  const actions = clickable ? slackButtons(m.buttons, { ts: m.ts }) : null;
  const node = el("div", { className: "slack-message", dataset: { ts: m.ts } }, header, messageBody(m, users), actions, reactions);
  if (!inThread && isRoot(m)) {
    const label = m.reply_count > 0 ? `${m.reply_count} ${m.reply_count === 1 ? "reply" : "replies"}` : "Reply in thread";
    node.append(el("button", { type: "button", className: "open-thread", onclick: () => openThread(m.ts), text: label }));
    if (m.ts === ui.thread) node.classList.add("selected");
  }
  return node;
}

function privateNote(p) {
  return el(
    "div",
    { className: "slack-message private", dataset: { ts: p.ts } },
    el("div", { className: "meta" }, el("span", { className: "name", text: "Rally Bridge" }), el("span", { className: "app", text: "APP" }), el("span", { className: "time", text: timeOf(p.ts) })),
    el("div", { className: "body" }, mrkdwn(p.text, {})),
    slackButtons(p.buttons, { ts: p.ts, private: true }),
    el("div", { className: "only-you", text: "Only visible to you" }),
  );
}

function byTs(a, b) {
  return Number(a.ts) - Number(b.ts);
}

function renderSlack(data) {
  const slack = data.slack;
  const users = slack.users;
  $("channel-name").textContent = "#" + slack.name;
  const options = data.people.map((p) => ({ value: p.id, label: `${p.name} (${p.short})` }));
  ui.viewer = fillSelect($("slack-person"), options, ui.viewer);
  const me = data.people.find((p) => p.id === ui.viewer);
  $("slack-role").textContent = me ? `${me.name}: ${me.role}.` : "";

  const channelItems = [
    ...slack.messages.filter(isRoot).map((m) => ({ ts: m.ts, node: () => slackMessage(m, users) })),
    ...slack.private.filter((p) => !p.thread_ts).map((p) => ({ ts: p.ts, node: () => privateNote(p) })),
  ].sort(byTs);
  const channel = $("channel-messages");
  const atBottom = channel.scrollHeight - channel.scrollTop - channel.clientHeight < 30;
  channel.replaceChildren(...channelItems.map((item) => item.node()));
  if (channelItems.length === 0) {
    channel.append(el("p", { className: "empty", text: "Nothing here yet. As the study owner, try /rally link " + data.study.id }));
  }
  if (atBottom) channel.scrollTop = channel.scrollHeight;
  renderDirectMessages(slack.dms, users);

  const root = slack.messages.find((m) => m.ts === ui.thread);
  const thread = $("thread-messages");
  $("thread-text").disabled = $("thread-send").disabled = !root;
  if (!root) {
    ui.thread = "";
    thread.replaceChildren(el("p", { className: "empty", text: "Click “Reply in thread” under a participant's thread to open it here." }));
    return;
  }
  const replies = [
    ...slack.messages.filter((m) => m.thread_ts === root.ts && m.ts !== root.ts).map((m) => ({ ts: m.ts, node: () => slackMessage(m, users, { inThread: true }) })),
    ...slack.private.filter((p) => p.thread_ts === root.ts).map((p) => ({ ts: p.ts, node: () => privateNote(p) })),
  ].sort(byTs);
  const count = root.reply_count;
  thread.replaceChildren(
    slackMessage(root, users, { inThread: true }),
    el("div", { className: "divider", text: `${count} ${count === 1 ? "reply" : "replies"}` }),
    ...replies.map((item) => item.node()),
  );
}

function renderDirectMessages(dms, users) {
  $("dm-count").textContent = String(dms.length);
  const nodes = dms.map((m) => slackMessage(m, users, { inThread: true, clickable: false }));
  if (nodes.length === 0) nodes.push(el("p", { className: "empty", text: "No direct messages from the bot to you." }));
  $("dm-messages").replaceChildren(...nodes);
}

function renderRally(data) {
  $("study-name").textContent = `${data.study.name} (${data.study.id})`;
  const rows = data.participants.map((p) => {
    const approved = p.approval === "APPROVED";
    const button = approved
      ? el("span", { className: "done", text: "✓" })
      : el("button", { type: "button", className: "approve", onclick: () => act("/api/rally/approve", { participant: p.id }), text: "Approve" });
    return el(
      "tr",
      { dataset: { participant: p.id } },
      el("td", { text: p.name }),
      el("td", { className: "approval", text: approved ? "Approved" : "Pending" }),
      el("td", {}, button),
    );
  });
  $("rally-participants").tBodies[0].replaceChildren(...rows);
  $("archive-count").textContent = `${data.archive.length} ${data.archive.length === 1 ? "message" : "messages"}`;
  const items = data.archive.map((row) => {
    const inbound = row.direction === "FROM_PARTICIPANT";
    const when = row.sent_at ? clock(new Date(row.sent_at)) : "";
    const source = row.source.charAt(0) + row.source.slice(1).toLowerCase();
    return el(
      "li",
      { className: inbound ? "in" : "out", dataset: { archiveId: row.id } },
      el("span", { className: "meta", text: `${when} ${inbound ? "←" : "→"} ${row.participant} · ${row.author} · via ${source}` }),
      el("span", { className: "body", text: row.body }),
    );
  });
  if (items.length === 0) items.push(el("li", { className: "empty", text: "Nothing archived yet." }));
  $("archive").replaceChildren(...items);
}

function render(data) {
  renderStatus(data);
  renderParticipant(data);
  renderSlack(data);
  renderRally(data);
}

// ---- talking to the playground server --------------------------------------------------------------------

async function refresh() {
  const viewer = ui.viewer ? `?as=${encodeURIComponent(ui.viewer)}` : "";
  try {
    const response = await fetch("/api/state" + viewer, { cache: "no-store" });
    const body = await response.text();
    if (!response.ok) throw new Error(JSON.parse(body).error || response.statusText);
    if (body !== ui.lastBody) {
      ui.lastBody = body;
      ui.data = JSON.parse(body);
      render(ui.data);
    }
    document.body.classList.remove("offline");
  } catch (error) {
    document.body.classList.add("offline");
    $("ready").textContent = "playground unreachable";
    $("ready").className = "pill bad";
  }
}

async function act(path, payload) {
  showError("");
  try {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      showError(answer.error || `HTTP ${response.status}`);
      return false;
    }
    return true;
  } catch (error) {
    showError("The playground is not reachable: is rallybridge demo still running?");
    return false;
  } finally {
    await refresh();
  }
}

function openThread(ts) {
  ui.thread = ts;
  if (ui.data) renderSlack(ui.data);
  $("thread-text").focus();
}

function submitter(form, input, send) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    const ok = await send(text);
    if (ok) input.value = "";
  });
}

function wire() {
  submitter($("participant-form"), $("participant-text"), (text) =>
    act("/api/participant/write", { participant: ui.participant, body: text }),
  );
  $("participant-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("participant-form").requestSubmit();
    }
  });
  submitter($("channel-form"), $("channel-text"), (text) =>
    text.trim().startsWith("/")
      ? act("/api/slack/command", { user: ui.viewer, text })
      : act("/api/slack/post", { user: ui.viewer, text }),
  );
  submitter($("thread-form"), $("thread-text"), (text) =>
    act("/api/slack/post", { user: ui.viewer, text, thread_ts: ui.thread }),
  );
  $("participant-select").addEventListener("change", (event) => {
    ui.participant = event.target.value;
    if (ui.data) renderParticipant(ui.data);
  });
  $("slack-person").addEventListener("change", (event) => {
    ui.viewer = event.target.value;
    refresh();
  });
  $("outage").addEventListener("change", (event) => act("/api/respondent/outage", { down: event.target.checked }));
  $("forward").addEventListener("click", () => act("/api/time/forward", { hours: 2 }));
  $("participant-read").addEventListener("click", () => act("/api/participant/read", { participant: ui.participant }));
}

async function poll() {
  await refresh();
  setTimeout(poll, POLL_MS);
}

wire();
poll();
