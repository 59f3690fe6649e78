// Buttons under a Slack message or a private note (Block Kit "actions"), as Slack shows them, clicked as the
// person chosen in the Slack pane: the playground server has Slack's stand-in send the signed click to the bridge.
// Loaded before app.js, whose helpers (el, act, ui) it uses when a message is drawn.
"use strict";

// target: { ts } for a channel message, { ts, private: true } for a private note only the viewer sees.
function slackButtons(buttons, target) {
  if (!Array.isArray(buttons) || buttons.length === 0) return null;
  return el(
    "div",
    { className: "block-actions" },
    buttons.map((b) =>
      el("button", {
        type: "button",
        className: "block-button" + (b.style ? " " + b.style : ""),
        disabled: !b.clickable,
        title: b.clickable ? null : b.why,
        dataset: { label: b.label },
        onclick: b.clickable ? (event) => clickButton(event.currentTarget, target, b.label) : null,
        text: b.label,
      }),
    ),
  );
}

async function clickButton(button, target, label) {
  button.disabled = true; // one click at a time; the next render draws it afresh
  await act("/api/slack/click", { user: ui.viewer, label, ...target });
}
