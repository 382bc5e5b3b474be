// DOM builders for the intent and the song list. Text from the daemon is only ever set as
// textContent (never parsed as HTML): titles and tags come from files anyone could have made.

export const FEEDBACK_BUTTONS = [["like", "Like"], ["dislike", "Dislike"], ["skip", "Skip"]];

/** el("p", {className: "x", "aria-label": "y"}, "text", child, ...) */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className" || key === "textContent" || key === "hidden" || key === "value") node[key] = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export function songLabel(item) {
  return `“${item.title}” by ${item.artist}`;
}

/** One slot as a person reads it: a name in the catalog's spelling when the catalog surely has it (what was
 * heard beside it when that differs), or as heard with the closest catalog name; a year range as "1990–1999";
 * "exclude" ({"genre": "country"}) as "genre country". */
function slotText(key, value, match) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    if (key !== "exclude" && ("from" in value || "to" in value)) return `${value.from ?? "…"}–${value.to ?? "…"}`;
    return Object.entries(value).map(([k, v]) => `${k} ${v}`).join(", ");
  }
  const heard = String(value);
  if (!match || typeof match !== "object" || typeof match.name !== "string") return heard;
  if (match.confident) return match.name.toLowerCase() === heard.toLowerCase() ? match.name : `${match.name} (heard “${heard}”)`;
  return `${heard} (not in the library; closest: ${match.name})`;
}

/** The parsed command: its name, confidence and slots. */
export function renderIntent(container, event) {
  const parts = [];
  const confidence = typeof event.confidence === "number" ? ` (confidence ${Math.round(event.confidence * 100)} %)` : "";
  const name = event.name === "none" ? "not understood" : event.name.replace(/_/g, " ");
  parts.push(el("p", {}, el("strong", { className: "intent-name", textContent: name }), confidence,
    event.text ? ` — “${event.text}”` : ""));
  const slots = Object.entries(event.slots);
  const matches = event.matches && typeof event.matches === "object" ? event.matches : {};
  if (slots.length) {
    const list = el("dl", { className: "slots" });
    for (const [key, value] of slots) {
      list.append(el("dt", { textContent: key === "exclude" ? "not" : key }), el("dd", { textContent: slotText(key, value, matches[key]) }));
    }
    parts.push(list);
  }
  container.replaceChildren(...parts);
}

/** The answer to a question about the music ("who sings this"): one sentence from the daemon. */
export function renderAnswer(node, event) {
  node.textContent = event.text;
  node.dataset.question = event.question;
  node.dataset.songId = event.song ? event.song.id : "";
}

/** The ranked songs, with their reasons and buttons (data-action: play, like, dislike, skip). */
export function renderSongs(list, items, { playingId = null, feedback = new Map() } = {}) {
  const fragment = document.createDocumentFragment();
  items.forEach((item, i) => {
    const facts = [item.album, item.year, (item.genres || []).join(", ")].filter((f) => f !== null && f !== undefined && f !== "");
    const score = typeof item.score === "number" ? item.score : null;
    const label = songLabel(item);
    const done = feedback.get(item.id) || {};
    const buttons = el("div", { className: "row" },
      el("button", { type: "button", dataset: { action: "play" }, disabled: !item.media_url, "aria-label": `Play ${label}`,
        title: item.media_url ? null : "no playable file for this song" }, item.media_url ? "Play" : "Not playable"),
      ...FEEDBACK_BUTTONS.map(([kind, text]) => el("button", { type: "button", dataset: { action: kind, on: String(!!done[kind]) },
        "aria-pressed": kind === "skip" ? null : String(!!done[kind]), "aria-label": `${text} ${label}` }, text)));
    fragment.append(el("li", { className: "song", dataset: { id: item.id, playing: String(item.id === playingId) } },
      el("h3", {}, `${i + 1}. `, el("span", { className: "title", textContent: item.title }), " — ",
        el("span", { className: "artist", textContent: item.artist })),
      facts.length || score !== null ? el("p", { className: "meta" },
        [...facts, score !== null ? `score ${score.toFixed(2)}` : null].filter((f) => f !== null).join(" · ")) : null,
      el("ul", { className: "reasons", "aria-label": "why" }, ...item.reasons.map((r) => el("li", { textContent: r }))),
      buttons));
  });
  list.replaceChildren(fragment);
}
