// The search page: results as you type, from the JSON API beside it. No framework, no build step.
"use strict";

const DEBOUNCE_MS = 200; // long enough to skip the keystrokes in between, short enough to feel instant
const HITS = 10;

const input = document.getElementById("query");
const form = document.getElementById("search-form");
const statusLine = document.getElementById("status");
const results = document.getElementById("results");
const about = document.getElementById("about");
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

function showStatus(message, kind = "") {
  statusLine.textContent = message;
  statusLine.className = kind;
}

function renderHits(hits) {
  const items = hits.map((hit) => {
    const item = document.createElement("li");
    item.className = "hit";
    const score = document.createElement("span");
    score.className = "score";
    score.title = "cosine similarity to the query";
    score.textContent = hit.score.toFixed(3);
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = hit.text;
    item.append(score, text);
    if (hit.date) {
      const date = document.createElement("time");
      date.dateTime = hit.date;
      date.textContent = hit.date;
      item.append(date);
    }
    return item;
  });
  results.replaceChildren(...items);
}

function parameters(query) {
  const values = new URLSearchParams({ q: query, k: HITS });
  for (const option of options) {
    if (option.value && !(option.name === "mode" && option.value === "semantic")) values.set(option.name, option.value);
  }
  return values;
}

function remember(query) {
  // The address holds the search, to share or bookmark; k is the page's own.
  const shown = query.trim() ? parameters(query) : new URLSearchParams();
  shown.delete("k");
  const address = shown.toString();
  window.history.replaceState(null, "", address ? `?${address}` : window.location.pathname);
}

async function search() {
  clearTimeout(timer);
  const query = input.value;
  remember(query);
  if (inFlight) inFlight.abort();
  if (!query.trim()) {
    inFlight = null;
    results.replaceChildren();
    showStatus("");
    return;
  }
  const ticket = ++latest;
  inFlight = new AbortController();
  showStatus("Searching…");
  let response;
  let body = null;
  try {
    response = await fetch(`search?${parameters(query)}`, withToken({ signal: inFlight.signal }));
    body = await response.json().catch(() => null);
  } catch (error) {
    if (error.name === "AbortError") return;
    if (ticket !== latest) return;
    results.replaceChildren();
    showStatus("Cannot reach the server. Is `semsearch serve` still running?", "error");
    return;
  }
  if (ticket !== latest) return;
  if (!response.ok) {
    results.replaceChildren();
    const reason = body && body.message ? body.message : `${response.status} ${response.statusText}`;
    if (response.status === 401) showStatus(NEEDS_TOKEN, "error");
    else showStatus(response.status === 422 ? reason : `The server failed to answer: ${reason}`, "error");
    return;
  }
  renderHits(body.hits);
  showStatus(body.hits.length ? `${body.hits.length} nearest documents, best first` : `Nothing matches “${query}”.`);
}

function searchSoon() {
  clearTimeout(timer);
  timer = setTimeout(search, DEBOUNCE_MS);
}

async function describeCollection() {
  try {
    const response = await fetch("info", withToken());
    if (response.status === 401) showStatus(NEEDS_TOKEN, "error");
    if (!response.ok) return;
    const info = await response.json();
    about.textContent = `${info.count.toLocaleString("en")} documents, searched by meaning (${info.encoder.name} encoder, ${info.backend.name} index).`;
  } catch {
    // The search itself reports an unreachable server; the description can stay as it is.
  }
}

input.addEventListener("input", searchSoon);
for (const option of options) option.addEventListener("change", search);
form.addEventListener("submit", (event) => {
  event.preventDefault();
  search();
});
for (const example of document.querySelectorAll(".example")) {
  example.addEventListener("click", () => {
    input.value = example.textContent.trim();
    input.focus();
    search();
  });
}

describeCollection();
const initial = new URLSearchParams(window.location.search);
for (const option of options) {
  if (initial.get(option.name)) option.value = initial.get(option.name);
}
if (initial.get("q")) {
  input.value = initial.get("q");
  search();
}
