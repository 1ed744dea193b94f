// The search page: results as you type, from the JSON API beside it. No framework, no build step.
// Whatever comes from the collection (texts, metadata, examples, its name) is put on the page as text
// (textContent, attributes set as properties), never as HTML: a collection can come from a stranger.
"use strict";

const DEBOUNCE_MS = 200; // long enough to skip the keystrokes in between, short enough to feel instant
const HITS = 10; // a page of results
const MAX_K = 1000; // the API's largest k (/similar pages by asking for more)
const MAX_OFFSET = 10000; // the API's largest offset (/search pages with it)
const MAX_META_FIELDS = 12; // shown per hit; the rest are counted
const MAX_META_CHARS = 120; // of a metadata value shown; the whole of it is in the tooltip

// What each mode ranks by, in words, and what its scores are.
const MODES = {
  semantic: {
    label: "Nearest in meaning", about: "searched by meaning", score: "cosine similarity", digits: 3,
    help: "cosine similarity to the query (higher is closer in meaning)",
    uses: (info) => ` (${info.encoder?.name ?? "its"} encoder, ${info.backend?.name ?? "vector"} index)`,
  },
  keyword: {
    label: "Matching words", about: "searched by the words they contain", score: "BM25 score", digits: 3,
    help: "BM25 score: how well the query's words match (higher is better)",
    uses: () => " (BM25 over a full-text index)",
  },
  hybrid: {
    label: "By meaning and words", about: "searched by meaning and by words", score: "fused rank score", digits: 4,
    help: "fused rank score: reciprocal rank fusion of the meaning and word rankings (higher is better)",
    uses: (info) => ` (${info.encoder?.name ?? "its"} encoder and BM25, fused by rank)`,
  },
};

const input = document.getElementById("query");
const form = document.getElementById("search-form");
const statusLine = document.getElementById("status");
const results = document.getElementById("results");
const about = document.getElementById("about");
const heading = document.getElementById("name");
const brand = document.getElementById("brand");
const examples = document.getElementById("examples");
const exampleList = document.getElementById("example-list");
const resultsHead = document.getElementById("results-head");
const resultsTitle = document.getElementById("results-title");
const caption = document.getElementById("caption");
const backButton = document.getElementById("back");
const moreButton = document.getElementById("more");
const modeSelect = document.getElementById("mode");
// Search options, by the name the API gives them; an empty value is left out of the request.
const options = ["mode", "date-from", "date-to"].map((id) => document.getElementById(id));

// A server started with --token wants it on every request: the page is opened once as /?token=TOKEN,
// keeps the token for this tab (sessionStorage) and takes it out of the address, which may be shared.
const TOKEN_KEY = "semsearch-token";
const opened = new URLSearchParams(window.location.search);
if (opened.has("token")) {
  sessionStorage.setItem(TOKEN_KEY, opened.get("token"));
  opened.delete("token");
  window.history.replaceState(null, "", opened.toString() ? `?${opened}` : window.location.pathname);
}

function withToken(request = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...request, headers: { ...request.headers, Authorization: `Bearer ${token}` } } : request;
}

const NEEDS_TOKEN = "This server needs a token: open this page as /?token=TOKEN, with the token it was started with.";

let timer = null;
let inFlight = null; // the AbortController of the request whose answer we still want
let latest = 0; // answers to older requests are dropped, whatever order they arrive in
let info = null; // the collection's /info, once it came

// What the results on the page are: a search ({kind: "search", query, parameters, mode}) or the texts like
// one ({kind: "similar", hit}); `next` is where the next page starts, `more` whether there may be one.
let view = null;
let shown = new Set(); // the ids of the hits on the page, so that a page appended repeats none
const hitOf = new WeakMap(); // a result's <li> -> its hit
const previous = []; // the views "back" returns to, the last one last

function showStatus(message, kind = "") {
  statusLine.textContent = message;
  statusLine.className = kind;
}

function cancel() {
  clearTimeout(timer);
  if (inFlight) inFlight.abort();
  inFlight = null;
  latest += 1;
}

// GET `address` for the current view: {body}, {failed: message}, or null when a newer request superseded it.
async function getJson(address) {
  if (inFlight) inFlight.abort();
  const ticket = ++latest;
  const controller = new AbortController();
  inFlight = controller;
  let response;
  let body = null;
  try {
    response = await fetch(address, withToken({ signal: controller.signal }));
    body = await response.json().catch(() => null);
  } catch (error) {
    if (error.name === "AbortError" || ticket !== latest) return null;
    inFlight = null;
    return { failed: "Cannot reach the server. Is `semsearch serve` still running?" };
  }
  if (ticket !== latest) return null;
  inFlight = null;
  if (!response.ok) {
    const reason = body && body.message ? body.message : `${response.status} ${response.statusText}`;
    if (response.status === 401) return { failed: NEEDS_TOKEN };
    return { failed: response.status === 422 || response.status === 404 ? reason : `The server failed to answer: ${reason}` };
  }
  return { body };
}

function shorten(text, limit) {
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}

function metaText(value) {
  return typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
}

function metaList(meta) {
  const list = document.createElement("ul");
  list.className = "meta";
  const fields = Object.entries(meta);
  for (const [key, value] of fields.slice(0, MAX_META_FIELDS)) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "key";
    name.textContent = shorten(key, 40);
    const text = metaText(value);
    const shownValue = document.createElement("span");
    shownValue.className = "value";
    shownValue.textContent = shorten(text, MAX_META_CHARS);
    if (text.length > MAX_META_CHARS) shownValue.title = text;
    item.append(name, ": ", shownValue);
    list.append(item);
  }
  if (fields.length > MAX_META_FIELDS) {
    const rest = document.createElement("li");
    rest.className = "rest";
    rest.textContent = `and ${fields.length - MAX_META_FIELDS} more fields`;
    list.append(rest);
  }
  return list;
}

function hitItem(hit, mode) {
  const item = document.createElement("li");
  item.className = "hit";
  item.tabIndex = -1; // one result at a time is in the Tab order (see rove); the arrows move between them
  item.dataset.id = String(hit.id);
  hitOf.set(item, hit);
  const score = document.createElement("span");
  score.className = "score";
  score.title = MODES[mode].help;
  score.textContent = Number(hit.score).toFixed(MODES[mode].digits);
  const body = document.createElement("div");
  body.className = "body";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = hit.text;
  body.append(text);
  if (hit.meta && typeof hit.meta === "object" && Object.keys(hit.meta).length) body.append(metaList(hit.meta));
  item.append(score, body);
  if (hit.date) {
    const date = document.createElement("time");
    date.dateTime = hit.date;
    date.textContent = hit.date;
    item.append(date);
  }
  const like = document.createElement("button");
  like.type = "button";
  like.className = "like plain";
  like.tabIndex = -1; // from the keyboard, Enter on the result does the same
  like.textContent = "similar";
  like.title = "Texts like this one (Enter)";
  like.addEventListener("click", () => showSimilar(hit));
  item.append(like);
  return item;
}

function hitItems() {
  return [...results.children];
}

// Roving focus: the result last visited is the one Tab reaches.
function rove(item) {
  for (const other of hitItems()) other.tabIndex = other === item ? 0 : -1;
}

function focusHit(item) {
  rove(item);
  item.focus();
}

function viewMode() {
  return view.kind === "similar" ? "semantic" : view.mode;
}

function describeView() {
  const count = shown.size;
  const mode = MODES[viewMode()];
  resultsHead.hidden = view.kind === "search" && count === 0;
  resultsTitle.hidden = view.kind === "search";
  resultsTitle.textContent = view.kind === "similar" ? `like: ${view.hit.text}` : "";
  caption.textContent = `${mode.label} · score: ${mode.score}`;
  results.setAttribute("aria-label", view.kind === "similar" ? `Texts like: ${view.hit.text}` : `${mode.label}: “${view.query}”`);
  const back = previous[previous.length - 1];
  backButton.hidden = !back;
  if (back) {
    const to = back.view.kind === "similar" ? `like: ${shorten(back.view.hit.text, 60)}` : `“${shorten(back.view.query, 60)}”`;
    backButton.textContent = `← Back to ${to}`;
  }
  moreButton.hidden = !view.more;
  moreButton.disabled = false;
  if (!results.querySelector(".hit[tabindex='0']") && results.firstElementChild) rove(results.firstElementChild);
}

function statusOf() {
  const count = shown.size;
  if (count === 0) return view.kind === "similar" ? "No other text is like this one." : `Nothing matches “${view.query}”.`;
  const counted = count === 1 ? "1 result" : `${count} results`;
  return view.more ? `${counted}, best first` : `${counted}, best first; that is all`;
}

function show(hits, append) {
  if (!append) {
    results.replaceChildren();
    shown = new Set();
  }
  const fresh = hits.filter((hit) => !shown.has(hit.id));
  for (const hit of fresh) shown.add(hit.id);
  results.append(...fresh.map((hit) => hitItem(hit, viewMode())));
  describeView();
  showStatus(statusOf());
  return fresh;
}

function clearResults() {
  results.replaceChildren();
  shown = new Set();
  resultsHead.hidden = true;
  moreButton.hidden = true;
}

function parameters(query) {
  const values = new URLSearchParams({ q: query, k: HITS });
  for (const option of options) {
    if (option.value && !(option.name === "mode" && option.value === "semantic")) values.set(option.name, option.value);
  }
  return values;
}

function dateParameters() {
  const values = new URLSearchParams();
  for (const option of options) if (option.name !== "mode" && option.value) values.set(option.name, option.value);
  return values;
}

function remember(query) {
  // The address holds the search, to share or bookmark; k is the page's own.
  const address = query.trim() ? parameters(query) : new URLSearchParams();
  address.delete("k");
  const text = address.toString();
  window.history.replaceState(null, "", text ? `?${text}` : window.location.pathname);
}

async function search() {
  clearTimeout(timer);
  const query = input.value;
  remember(query);
  previous.length = 0; // a new search: nothing to go back to
  if (!query.trim()) {
    cancel();
    view = null;
    clearResults();
    showStatus("");
    return;
  }
  const asked = parameters(query);
  showStatus("Searching…");
  const answer = await getJson(`search?${asked}`);
  if (!answer) return;
  if (answer.failed) {
    view = null;
    clearResults();
    showStatus(answer.failed, "error");
    return;
  }
  const hits = answer.body.hits;
  view = { kind: "search", query, parameters: asked, mode: asked.get("mode") || "semantic", next: HITS,
           more: hits.length >= HITS && HITS <= MAX_OFFSET };
  show(hits, false);
}

function searchSoon() {
  clearTimeout(timer);
  timer = setTimeout(search, DEBOUNCE_MS);
}

// The next page: /search from the offset where this one ended; /similar (which has no offset) asked for more.
async function showMore() {
  if (!view || !view.more) return;
  const current = view;
  let address;
  if (current.kind === "search") {
    const asked = new URLSearchParams(current.parameters);
    asked.set("offset", current.next);
    address = `search?${asked}`;
  } else {
    const asked = dateParameters();
    asked.set("k", Math.min(current.next + HITS, MAX_K));
    address = `similar/${encodeURIComponent(current.hit.id)}?${asked}`;
  }
  moreButton.disabled = true;
  showStatus("Fetching more…");
  const answer = await getJson(address);
  moreButton.disabled = false;
  if (!answer || view !== current) return;
  if (answer.failed) {
    showStatus(answer.failed, "error");
    return;
  }
  const hits = answer.body.hits;
  if (current.kind === "search") {
    current.next += HITS;
    current.more = hits.length >= HITS && current.next <= MAX_OFFSET;
  } else {
    const asked = Math.min(current.next + HITS, MAX_K);
    current.more = hits.length >= asked && asked < MAX_K;
    current.next = asked;
  }
  const fresh = show(hits, true);
  if (!fresh.length) {
    current.more = false;
    describeView();
    showStatus(statusOf());
  }
  if (document.activeElement === moreButton && moreButton.hidden && results.lastElementChild) focusHit(results.lastElementChild);
}

// The texts like one hit, from /similar/{id}; what was shown is kept to go back to.
async function showSimilar(hit) {
  const asked = dateParameters();
  asked.set("k", HITS);
  showStatus(`Looking for texts like “${shorten(hit.text, 60)}”…`);
  const answer = await getJson(`similar/${encodeURIComponent(hit.id)}?${asked}`);
  if (!answer) return;
  if (answer.failed) {
    showStatus(answer.failed, "error");
    return;
  }
  const focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest(".hit") : null;
  previous.push({ view, items: hitItems(), shown, status: statusLine.textContent, statusKind: statusLine.className,
                  focusId: focused ? focused.dataset.id : String(hit.id), scroll: window.scrollY });
  const hits = answer.body.hits;
  view = { kind: "similar", hit, next: HITS, more: hits.length >= HITS && HITS < MAX_K };
  show(hits, false);
  if (results.firstElementChild) focusHit(results.firstElementChild);
  else backButton.focus();
}

function goBack() {
  const last = previous.pop();
  if (!last) return;
  cancel();
  view = last.view;
  shown = last.shown;
  results.replaceChildren(...last.items);
  describeView();
  showStatus(last.status, last.statusKind);
  window.scrollTo(0, last.scroll);
  const item = hitItems().find((candidate) => candidate.dataset.id === last.focusId);
  if (item) focusHit(item);
  else input.focus();
}

function showExamples(texts) {
  const buttons = texts.map((text) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "example";
    button.textContent = text;
    button.addEventListener("click", () => {
      input.value = text;
      input.focus();
      search();
    });
    return button;
  });
  exampleList.replaceChildren(...buttons);
  examples.hidden = buttons.length === 0; // an older collection kept none: no examples rather than someone else's
}

function describeCollection() {
  const mode = MODES[modeSelect.value] || MODES.semantic;
  if (!info) {
    about.textContent = `The texts of this collection, ${mode.about}.`;
    return;
  }
  const count = typeof info.count === "number" ? `${info.count.toLocaleString("en")} documents` : "Documents";
  about.textContent = `${count}, ${mode.about}${mode.uses(info)}.`;
}

async function loadInfo() {
  try {
    const response = await fetch("info", withToken());
    if (response.status === 401) showStatus(NEEDS_TOKEN, "error");
    if (!response.ok) return;
    info = await response.json();
  } catch {
    return; // the search itself reports an unreachable server; the description can stay as it is
  }
  if (typeof info.name === "string" && info.name) {
    heading.textContent = info.name;
    brand.hidden = false;
    document.title = `${info.name} · semsearch`;
  }
  const texts = Array.isArray(info.examples) ? info.examples.filter((text) => typeof text === "string" && text.trim()) : [];
  showExamples(texts.slice(0, 5));
  describeCollection();
}

input.addEventListener("input", searchSoon);
input.addEventListener("keydown", (event) => {
  if (event.key === "ArrowDown" && results.firstElementChild) {
    event.preventDefault();
    focusHit(results.firstElementChild);
  }
});
for (const option of options) {
  option.addEventListener("change", () => {
    describeCollection();
    search();
  });
}
form.addEventListener("submit", (event) => {
  event.preventDefault();
  search();
});
results.addEventListener("focusin", (event) => {
  const item = event.target.closest(".hit");
  if (item) rove(item);
});
results.addEventListener("keydown", (event) => {
  const item = event.target.closest(".hit");
  if (!item || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
  const all = hitItems();
  const at = all.indexOf(item);
  if (event.key === "ArrowDown") {
    if (at + 1 < all.length) focusHit(all[at + 1]);
    else if (!moreButton.hidden) moreButton.focus();
  } else if (event.key === "ArrowUp") {
    if (at > 0) focusHit(all[at - 1]);
    else input.focus();
  } else if (event.key === "Home") {
    focusHit(all[0]);
  } else if (event.key === "End") {
    focusHit(all[all.length - 1]);
  } else if (event.key === "Enter" && event.target === item) {
    showSimilar(hitOf.get(item));
  } else {
    return;
  }
  event.preventDefault();
});
moreButton.addEventListener("click", showMore);
moreButton.addEventListener("keydown", (event) => {
  if (event.key === "ArrowUp" && results.lastElementChild) {
    event.preventDefault();
    focusHit(results.lastElementChild);
  }
});
backButton.addEventListener("click", goBack);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && previous.length) {
    event.preventDefault(); // in the query box, Esc would otherwise clear it
    goBack();
  }
});

const initial = new URLSearchParams(window.location.search);
for (const option of options) {
  if (initial.get(option.name)) option.value = initial.get(option.name);
}
describeCollection();
loadInfo();
if (initial.get("q")) {
  input.value = initial.get("q");
  search();
}
