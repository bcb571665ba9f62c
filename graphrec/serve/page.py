"""``GET /``: one server-rendered page with a little vanilla JavaScript (no build step).

Pick a user, see their top-10 with titles and each item's explanation
picture, search by text, and click an item to record an interaction
(``POST /events``) and watch the list change. Where the server requires a
token, the page asks for it once and keeps it in the browser's
``localStorage``.
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>graphrec: {{MODEL}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:62em;margin:1.5em auto;padding:0 1em;color:#222}
h1{font-size:1.4em} form{margin:.6em 0} input{font-size:1em;padding:.25em .4em}
ol{padding-left:1.6em} li{margin:.5em 0} .score{color:#777;font-size:.85em}
button.item{background:none;border:none;color:#0645ad;cursor:pointer;font-size:1em;padding:0;text-align:left}
button.item:hover{text-decoration:underline} details{margin:.2em 0 .6em} img{max-width:100%;border:1px solid #ddd}
#status{color:#2a7a2a;min-height:1.2em} .err{color:#b00020}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:2em} @media(max-width:50em){.cols{grid-template-columns:1fr}}
</style></head>
<body>
<h1>graphrec <small>({{MODEL}})</small></h1>
<p>Click a title to record that the user interacted with it; the list updates at once.
Open "why?" for the explanation.</p>
<form id="userform"><label>User <input id="user" list="users" size="12" required></label>
<datalist id="users"></datalist> <button>Recommend</button></form>
<form id="searchform"><label>Search <input id="q" size="40" placeholder="a space adventure with robots"></label>
<button>Search</button> <label><input type="checkbox" id="personal" checked> for this user</label></form>
<div id="status"></div>
<div class="cols"><section><h2>Top 10</h2><ol id="recs"></ol></section>
<section><h2>Search results</h2><ol id="results"></ol></section></div>
<script>
const $ = (id) => document.getElementById(id);
let token = localStorage.getItem("graphrec-token") || "";
function say(text, bad) { $("status").textContent = text; $("status").className = bad ? "err" : ""; }
async function call(path, options) {
  const r = await fetch(path, options);
  const body = (r.headers.get("content-type") || "").includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error((body && body.detail) || r.statusText);
  return body;
}
function row(it, user, withWhy) {
  const li = document.createElement("li");
  const b = document.createElement("button");
  b.className = "item"; b.textContent = it.title; b.dataset.item = it.item;
  b.title = "record an interaction of this user with this item";
  b.onclick = () => record(user, it.item, it.title);
  li.appendChild(b);
  const s = document.createElement("span"); s.className = "score"; s.textContent = "  " + it.score.toFixed(3);
  li.appendChild(s);
  if (withWhy) {
    const d = document.createElement("details"); const sum = document.createElement("summary");
    sum.textContent = "why?"; d.appendChild(sum);
    d.ontoggle = () => { if (d.open && !d.dataset.loaded) { d.dataset.loaded = 1;
      const img = document.createElement("img"); img.alt = "explanation of " + it.title;
      img.src = "/explain?format=png&user=" + encodeURIComponent(user) + "&item=" + encodeURIComponent(it.item);
      d.appendChild(img); } };
    li.appendChild(d);
  }
  return li;
}
async function recommend() {
  const user = $("user").value.trim(); if (!user) return;
  try {
    const data = await call("/recommend?k=10&user=" + encodeURIComponent(user));
    $("recs").replaceChildren(...data.items.map((it) => row(it, user, true)));
    $("recs").dataset.user = user;
  } catch (e) { say(e.message, true); }
}
async function search() {
  const q = $("q").value.trim(); if (!q) return;
  const user = $("user").value.trim();
  let path = "/search?k=10&q=" + encodeURIComponent(q);
  if ($("personal").checked && user) path += "&user=" + encodeURIComponent(user);
  try {
    const data = await call(path);
    $("results").replaceChildren(...data.items.map((it) => row(it, user, false)));
  } catch (e) { say(e.message, true); }
}
async function record(user, item, title) {
  if (!user) { say("pick a user first", true); return; }
  const send = () => call("/events", {method: "POST", headers: Object.assign({"content-type": "application/json"},
      token ? {"authorization": "Bearer " + token} : {}), body: JSON.stringify([{user: isNaN(user) ? user : Number(user),
      item: isNaN(item) ? item : Number(item)}])});
  try { await send(); }
  catch (e) {
    if (!/GRAPHREC_API_TOKEN/.test(e.message)) { say(e.message, true); return; }
    token = prompt("This server needs its API token to record interactions:") || "";
    localStorage.setItem("graphrec-token", token);
    try { await send(); } catch (e2) { say(e2.message, true); return; }
  }
  say("recorded: user " + user + " interacted with " + title);
  await recommend();
  if ($("q").value.trim()) await search();
}
$("userform").onsubmit = (e) => { e.preventDefault(); recommend(); };
$("searchform").onsubmit = (e) => { e.preventDefault(); search(); };
call("/users?limit=100").then((d) => {
  $("users").replaceChildren(...d.users.map((u) => { const o = document.createElement("option"); o.value = u; return o; }));
  if (!$("user").value && d.users.length) { $("user").value = d.users[0]; recommend(); }
}).catch((e) => say(e.message, true));
</script>
</body></html>
"""
