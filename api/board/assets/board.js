// The packing board: plain JavaScript over the service's public API, no build step.
//
// Tenant, token, site and date come from the URL fragment only (#tenant=..&token=..):
// the browser never sends a fragment to a server, so the token reaches no access log
// or proxy. Every call carries the token as any client's would.
//
// Live updates follow the change feed (GET /changes, long-poll with `wait`): every fact
// of the tenant by position, so nothing is missed. A feed item only says "something
// changed"; the packlist (the projection, read after the store's head) stays the one
// source of the figures, re-read once per burst. Where the service has no feed (404) the
// board polls the packlist twice a second instead.
//
// Figures follow docs/explanation/semantics.md ("Progress is per line"): a line's amounts in
// its own unit, an order's progress as lines complete out of lines, never a sum of pieces
// and grams. Times and rates are when the ledger recorded each scan (a scanner's clock may
// be wrong); the scanner's own time is shown beside it where they differ.
"use strict";

(() => {
  const STATUSES = ["INITIAL", "IN_PROGRESS", "PRE_PACKED", "PACKED", "CANCELLED"];
  const LABELS = {
    INITIAL: "Initial",
    IN_PROGRESS: "In progress",
    PRE_PACKED: "Pre-packed",
    PACKED: "Packed",
    CANCELLED: "Cancelled",
  };
  // A shape per status beside the word: colour is never the only signal.
  const SYMBOLS = { INITIAL: "○", IN_PROGRESS: "◐", PRE_PACKED: "◕", PACKED: "●", CANCELLED: "✕" };
  const FACTS = {
    OrderRegistered: "Order registered",
    PackingEventRecorded: "Scan",
    PackingStatusChanged: "Status changed",
    AssigneeAdded: "Assignee added",
    AssigneeRemoved: "Assignee removed",
    PackagingChanged: "Packaging set",
    OrderFinished: "Finished",
    HoldingAreaAssigned: "Holding area assigned",
    CorrectionRecorded: "Correction",
    OrderCancelled: "Cancelled",
    RecalculationDelivery: "Sent to the Order Service",
  };
  const HOUR_MS = 3600 * 1000;
  // Without a change feed: the packlist twice a second, so a change still shows within 1 s.
  const POLL_MS = 500;
  const WAIT_S = 25; // long-poll: held until a fact commits, under proxies' idle limits
  const MAX_BACKOFF_MS = 10000;
  const MAX_SCAN_PAGES = 200; // of 1000 facts: the scans a board loads at start, at most
  // A scanner's clock this far from the ledger's is shown beside the ledger's time.
  const SKEW_SHOWN_MS = 2 * 60 * 1000;
  const PIECE_UNITS = new Set(["H87", "C62", "PCE", "EA"]);
  const UNIT_SYMBOLS = {
    MGM: "mg", GRM: "g", KGM: "kg", TNE: "t",
    MLT: "ml", CLT: "cl", DLT: "dl", LTR: "l", HLT: "hl", MTQ: "m³",
    MMT: "mm", CMT: "cm", DMT: "dm", MTR: "m", KMT: "km",
  };

  const $ = (id) => document.getElementById(id);
  // The API's root, also behind a proxy that serves the service under a path prefix.
  const ROOT = location.pathname.replace(/\/board\/?$/, "/");

  let config = null; // {tenant, token, site, date, status, assignee}
  let run = 0; // bumped on every (re)start: an older loop sees it and stops
  let board = freshBoard();

  function freshBoard() {
    return {
      orders: new Map(), // orderId -> packlist item (CANCELLED ones included)
      loaded: false, // the first packlist answer arrived: until then, no "No orders"
      scans: new Map(), // eventId -> {orderId, at (recorded), scannerAt}
      firstScan: new Map(), // orderId -> the scan recorded first: {at, scannerAt}
      clock: "ledger", // where scan times come from: "ledger", or "scanner" without a feed
      feed: "starting",
      refreshing: false,
      dirty: false,
      detail: null, // orderId shown in the dialog
      failures: 0,
    };
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.message || body.detail)) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }
  class Stopped extends Error {}

  // -- the URL fragment ------------------------------------------------------------------

  function readFragment() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const token = (params.get("token") || "").trim();
    return {
      token,
      tenant: params.get("tenant") || tokenTenant(token) || "",
      site: params.get("site") || "",
      date: params.get("date") || "",
      status: params.get("status") || "",
      assignee: params.get("assignee") || "",
    };
  }

  function writeFragment(values) {
    const params = new URLSearchParams();
    for (const key of ["tenant", "token", "site", "date", "status", "assignee"]) {
      if (values[key]) params.set(key, values[key]);
    }
    return "#" + params.toString();
  }

  // The token's own `tenant` claim, so a pasted token is enough (never trusted: the
  // service checks it).
  function tokenTenant(token) {
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(payload)).tenant || "";
    } catch (_) {
      return "";
    }
  }

  function today() {
    const d = new Date();
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }
  const pad = (n) => String(n).padStart(2, "0");

  // -- the API ---------------------------------------------------------------------------

  async function api(path, myRun) {
    let response;
    try {
      response = await fetch(`${ROOT}pick-pack/${encodeURIComponent(config.tenant)}/${path}`, {
        headers: { Authorization: `Bearer ${config.token}`, Accept: "application/json" },
        cache: "no-store",
        credentials: "omit",
      });
    } catch (error) {
      if (myRun !== run) throw new Stopped();
      throw error; // the network: retried
    }
    if (myRun !== run) throw new Stopped();
    if (!response.ok) {
      let body = null;
      try {
        body = await response.json();
      } catch (_) {
        /* not JSON */
      }
      throw new ApiError(response.status, body);
    }
    return response.json();
  }

  const fatal = (error) => error instanceof ApiError && (error.status === 401 || error.status === 403);
  const transient = (error) =>
    !(error instanceof ApiError) || error.status >= 500 || error.status === 429 || error.status === 408;

  // Runs `step` until it succeeds; a lost connection or a 5xx is retried with backoff and
  // said on the page; a refused token stops the board.
  async function retrying(step, myRun) {
    for (;;) {
      try {
        const result = await step();
        connected();
        return result;
      } catch (error) {
        if (error instanceof Stopped || myRun !== run) throw new Stopped();
        if (!transient(error)) throw error;
        board.failures += 1;
        const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(board.failures, 5));
        notice(`Connection lost: reconnecting in ${Math.round(delay / 1000)} s (attempt ${board.failures})…`, "lost");
        setLive("Reconnecting…", "lost");
        await sleep(delay);
        if (myRun !== run) throw new Stopped();
      }
    }
  }

  function connected() {
    if (board.failures > 0) {
      board.failures = 0;
      notice("Reconnected.", "ok");
      setTimeout(() => {
        if (board.failures === 0 && $("notice").dataset.kind === "ok") $("notice").hidden = true;
      }, 4000);
    }
    setLive(board.feed === "feed" ? "Live: change feed" : board.feed === "polling" ? "Live: polling (no change feed)" : "Connecting…", "ok");
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // -- start -----------------------------------------------------------------------------

  async function start() {
    const myRun = ++run;
    board = freshBoard();
    config = readFragment();
    $("message").hidden = true;
    $("notice").hidden = true;
    closeDetail();
    if (!config.token || !config.tenant) {
      showTokenForm(config.token && !config.tenant ? "The token names no tenant: enter it." : "");
      return;
    }
    $("token-form").hidden = true;
    $("pickers").hidden = false;
    $("tenant-name").textContent = `· ${config.tenant}`;
    try {
      if (!config.date) config.date = today();
      if (!config.site) {
        config.site = (await retrying(() => discoverSites(myRun), myRun))[0] || "main";
      }
      $("site").value = config.site;
      $("date").value = config.date;
      history.replaceState(null, "", writeFragment(config));
      $("board").hidden = false;
      $("filter-status").value = config.status;
      render();
      const head = await retrying(() => feedHead(myRun), myRun);
      board.feed = head === null ? "polling" : "feed";
      board.clock = head === null ? "scanner" : "ledger";
      connected();
      await retrying(() => refreshPacklist(myRun), myRun);
      if (head === null) await retrying(() => loadScans(myRun), myRun);
      else await retrying(() => loadRecordedScans(myRun, head), myRun);
      render();
      if (head === null) pollLoop(myRun);
      else feedLoop(myRun, head);
      tickLoop(myRun);
    } catch (error) {
      failed(error);
    }
  }

  function failed(error) {
    if (error instanceof Stopped) return;
    if (fatal(error)) {
      run += 1; // stop every loop
      board = freshBoard();
      render();
      $("board").hidden = true;
      closeDetail();
      const why =
        error.status === 401
          ? "The token was refused: it is malformed, badly signed or expired. Paste a new one."
          : `This token may not read tenant “${config.tenant}” (another tenant's token, or no view scope).`;
      showTokenForm(why);
      return;
    }
    message(`The board could not load: ${error.message}`);
  }

  function showTokenForm(why) {
    $("board").hidden = true;
    $("pickers").hidden = true;
    $("token-form").hidden = false;
    $("tenant-name").textContent = "";
    setLive("", "");
    if (why) message(why);
    $("tenant-input").value = config.tenant || "";
    $("site-input").value = config.site || "";
    $("date-input").value = config.date || "";
    $("token-input").focus();
  }

  // Sites the tenant's facts name, first one first: its first registered orders (feed)
  // and its latest scans.
  async function discoverSites(myRun) {
    const sites = new Set();
    try {
      const page = await api("changes?after=0&limit=1000", myRun);
      for (const item of page.items) {
        const site = item.data && item.data.order && item.data.order.siteCode;
        if (site) sites.add(site);
      }
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
    const since = new Date(Date.now() - 24 * HOUR_MS).toISOString();
    for (const scan of await api(`events?timestamp=${encodeURIComponent(since)}&pageSize=1000`, myRun)) {
      if (scan.site) sites.add(scan.site);
    }
    const list = [...sites].sort();
    fillSites(list);
    return list;
  }

  function fillSites(list) {
    const datalist = $("sites");
    datalist.replaceChildren(...list.map((site) => el("option", { value: site })));
  }

  // -- the change feed -------------------------------------------------------------------

  // The tenant's newest position, found by bisection on `after` with one-item pages (a
  // few dozen indexed reads even on a large store) instead of reading the whole feed.
  // null: the service has no change feed.
  async function feedHead(myRun) {
    const probe = async (after) => {
      const page = await api(`changes?after=${after}&limit=1`, myRun);
      return page.items.length ? page.items[0].position : null;
    };
    let low;
    try {
      low = await probe(0);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
    if (low === null) return 0;
    // Invariant: a fact is at `low`; none is after `high` once the first loop ends.
    let high = 2 * low + 1;
    for (let found = await probe(high); found !== null; found = await probe(high)) {
      low = found;
      high = 2 * found + 1;
    }
    while (high - low > 1) {
      const middle = Math.floor((low + high) / 2);
      const found = await probe(middle);
      if (found === null) high = middle;
      else low = found;
    }
    const last = await probe(low);
    return last === null ? low : last;
  }

  async function feedLoop(myRun, position) {
    let after = position;
    while (myRun === run) {
      let page;
      try {
        page = await retrying(() => api(`changes?after=${after}&limit=1000&wait=${WAIT_S}`, myRun), myRun);
      } catch (error) {
        failed(error);
        return;
      }
      for (const item of page.items) applyFact(item);
      after = page.next;
      if (page.items.length) {
        requestRefresh(myRun);
        if (board.detail && page.items.some((i) => i.orderId === board.detail)) loadDetail(board.detail, myRun);
      }
    }
  }

  // A scan counts at the moment the ledger recorded it; its own timestamp is the scanner's
  // clock, kept to be shown beside it.
  function applyFact(item) {
    if (item.type === "PackingEventRecorded") {
      addScan(item.data.eventId, item.orderId, Date.parse(item.recordedAt), Date.parse(item.data.timestamp));
    }
  }

  // Without a feed: the packlist and the newest scans, twice a second.
  async function pollLoop(myRun) {
    while (myRun === run) {
      await sleep(POLL_MS);
      if (myRun !== run) return;
      try {
        await retrying(() => refreshPacklist(myRun), myRun);
        await retrying(() => loadScans(myRun, true), myRun);
        if (board.detail) loadDetail(board.detail, myRun);
      } catch (error) {
        failed(error);
        return;
      }
    }
  }

  // Relative times and the chart's window move on even when nothing happens.
  async function tickLoop(myRun) {
    while (myRun === run) {
      await sleep(10000);
      if (myRun === run) render();
    }
  }

  // -- the packlist and the scans --------------------------------------------------------

  // One re-read per burst of facts: a read in flight is followed by exactly one more.
  async function requestRefresh(myRun) {
    board.dirty = true;
    if (board.refreshing) return;
    board.refreshing = true;
    try {
      while (board.dirty && myRun === run) {
        board.dirty = false;
        await retrying(() => refreshPacklist(myRun), myRun);
      }
    } catch (error) {
      failed(error);
    } finally {
      if (myRun === run) board.refreshing = false;
    }
  }

  async function refreshPacklist(myRun) {
    // includeCancelled: the day's cancelled orders are counted and shown as cancelled.
    const query =
      `orders?siteCode=${encodeURIComponent(config.site)}&deliveryDate=${encodeURIComponent(config.date)}` +
      "&includeCancelled=true";
    const items = await api(query, myRun);
    board.loaded = true;
    const next = new Map(items.map((item) => [item.orderId, item]));
    // A service without includeCancelled leaves CANCELLED orders out: one that was on the
    // board is asked for, and stays shown as cancelled.
    const vanished = [...board.orders.values()].filter((o) => !next.has(o.orderId));
    for (const old of vanished) {
      if (old.packingStatus === "CANCELLED") {
        next.set(old.orderId, old);
        continue;
      }
      try {
        const order = await api(`orders/${encodeURIComponent(old.orderId)}`, myRun);
        if (order.packingStatus === "CANCELLED") next.set(old.orderId, { ...old, packingStatus: "CANCELLED", assignees: [] });
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
      }
    }
    board.orders = next;
    render();
  }

  // Where the scans shown start: the day before the delivery date (or the last hour, if
  // earlier).
  function scansSince() {
    const dayBefore = Date.parse(`${config.date}T00:00:00`) - 24 * HOUR_MS;
    return Math.min(Date.now() - HOUR_MS, Number.isNaN(dayBefore) ? Infinity : dayBefore);
  }

  // The scans the ledger recorded since scansSince(), from the change feed up to `head`:
  // the first position recorded since then is found by bisection (a few dozen one-item
  // reads), then the facts are read page by page.
  async function loadRecordedScans(myRun, head) {
    const since = scansSince();
    const recordedSince = async (after) => {
      const page = await api(`changes?after=${after}&limit=1`, myRun);
      return !page.items.length || Date.parse(page.items[0].recordedAt) >= since;
    };
    let start = 0;
    if (!(await recordedSince(0))) {
      let low = 0; // its next fact was recorded before `since`
      let high = head; // nothing after it
      while (high - low > 1) {
        const middle = Math.floor((low + high) / 2);
        if (await recordedSince(middle)) high = middle;
        else low = middle;
      }
      start = high;
    }
    let after = start;
    for (let pages = 0; pages < MAX_SCAN_PAGES && after < head; pages += 1) {
      const page = await api(`changes?after=${after}&limit=1000`, myRun);
      if (!page.items.length) break;
      for (const item of page.items) if (item.position <= head) applyFact(item);
      after = page.items[page.items.length - 1].position;
    }
    render();
  }

  // Without a change feed: scans from GET /events, which has only the scanners' own
  // timestamps (said on the chart). `incremental`: only the newest.
  async function loadScans(myRun, incremental = false) {
    let since;
    if (incremental && board.scans.size) {
      // A second back, so scans sharing the newest timestamp are not skipped.
      since = Math.max(...[...board.scans.values()].map((s) => s.at)) - 1000;
    } else {
      since = scansSince();
    }
    const iso = encodeURIComponent(new Date(since).toISOString());
    for (let pageNumber = 1; pageNumber <= 20; pageNumber += 1) {
      const page = await api(`events?timestamp=${iso}&pageNumber=${pageNumber}&pageSize=5000`, myRun);
      for (const scan of page) {
        const at = Date.parse(scan.timestamp);
        addScan(scan.eventId, scan.orderNumber, at, at);
      }
      if (page.length < 5000) break;
    }
    render();
  }

  function addScan(eventId, orderId, at, scannerAt) {
    if (board.scans.has(eventId) || Number.isNaN(at)) return;
    board.scans.set(eventId, { orderId, at, scannerAt });
    const first = board.firstScan.get(orderId);
    if (first === undefined || at < first.at) board.firstScan.set(orderId, { at, scannerAt });
  }

  // -- rendering -------------------------------------------------------------------------

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role" || key === "value" || key === "type" || key === "tabindex" || key === "scope" || key === "datetime" || key === "title")
        node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function statusBadge(status) {
    return el(
      "span",
      { class: `status status-${status}`, "data-status": status },
      el("span", { "aria-hidden": "true", class: "symbol", text: SYMBOLS[status] || "?" }),
      ` ${LABELS[status] || status}`,
    );
  }

  function assigneeName(a) {
    const name = [a.firstName, a.lastName].filter(Boolean).join(" ");
    return name || a.id || "?";
  }

  function since(ms) {
    const minutes = Math.floor((Date.now() - ms) / 60000);
    if (minutes < 1) return "under a minute";
    if (minutes < 60) return `${minutes} min`;
    return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  function render() {
    const orders = [...board.orders.values()];
    renderCounts(orders);
    renderFilters(orders);
    renderRate();
    const shown = orders.filter(
      (o) =>
        (!config || !config.status || o.packingStatus === config.status) &&
        (!config || !config.assignee ||
          (config.assignee === "-" ? !(o.assignees || []).length : (o.assignees || []).some((a) => a.id === config.assignee))),
    );
    const list = $("orders");
    const focused = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.orderId;
    list.replaceChildren(...shown.map(card));
    if (focused) {
      const again = list.querySelector(`[data-order-id="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
    $("shown").textContent = orders.length ? `${shown.length} of ${orders.length} orders shown` : "";
    const empty = $("empty");
    empty.hidden = shown.length > 0;
    empty.dataset.state = board.loaded ? "loaded" : "loading";
    if (config) {
      // "No orders" only once the service said so: before its first answer, say it loads.
      empty.textContent = !board.loaded
        ? `Loading the orders of site ${config.site} on ${config.date}…`
        : orders.length
          ? "No order matches the filters."
          : `No orders for site ${config.site} on ${config.date}. Pick another site or date above.`;
    }
    $("counts").setAttribute("aria-busy", board.loaded ? "false" : "true");
  }

  function renderCounts(orders) {
    const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    for (const o of orders) counts[o.packingStatus] = (counts[o.packingStatus] || 0) + 1;
    $("counts").replaceChildren(
      ...STATUSES.map((s) =>
        el(
          "li",
          { class: `count status-${s}`, id: `count-${s}`, "data-count": String(counts[s]) },
          el("span", { class: "count-number", text: board.loaded ? String(counts[s]) : "–" }),
          el("span", { class: "count-label" }, el("span", { "aria-hidden": "true", text: `${SYMBOLS[s]} ` }), LABELS[s]),
        ),
      ),
      el("li", { class: "count count-total", id: "count-total", "data-count": String(orders.length) },
        el("span", { class: "count-number", text: board.loaded ? String(orders.length) : "–" }),
        el("span", { class: "count-label", text: "Orders" })),
    );
  }

  function renderFilters(orders) {
    const status = $("filter-status");
    if (status.options.length === 1) {
      for (const s of STATUSES) status.append(el("option", { value: s, text: LABELS[s] }));
    }
    const people = new Map();
    for (const o of orders) for (const a of o.assignees || []) people.set(a.id, assigneeName(a));
    const select = $("filter-assignee");
    const current = config ? config.assignee : "";
    const options = [el("option", { value: "", text: "Everyone" }), el("option", { value: "-", text: "Unassigned" })];
    for (const [id, name] of [...people.entries()].sort((x, y) => x[1].localeCompare(y[1]))) {
      options.push(el("option", { value: id, text: name }));
    }
    if (current && current !== "-" && !people.has(current)) options.push(el("option", { value: current, text: current }));
    const signature = options.map((o) => o.value + o.textContent).join("|");
    if (select.dataset.signature !== signature) {
      select.replaceChildren(...options);
      select.dataset.signature = signature;
    }
    select.value = current;
  }

  function renderRate() {
    const now = Date.now();
    const buckets = new Array(60).fill(0);
    for (const { at } of board.scans.values()) {
      const age = now - at;
      if (age >= 0 && age < HOUR_MS) buckets[59 - Math.floor(age / 60000)] += 1;
    }
    const max = Math.max(1, ...buckets);
    const svg = $("rate-chart");
    const ns = "http://www.w3.org/2000/svg";
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", buckets.map((n, i) => `${(i * 600) / 59},${112 - (n / max) * 104}`).join(" "));
    line.setAttribute("class", "rate-line");
    const base = document.createElementNS(ns, "line");
    for (const [k, v] of Object.entries({ x1: 0, y1: 112, x2: 600, y2: 112, class: "rate-axis" })) base.setAttribute(k, v);
    svg.replaceChildren(base, line);
    const total = buckets.reduce((a, b) => a + b, 0);
    const clocks = board.clock === "ledger" ? "as the ledger recorded them" : "by the scanners' own clocks (this service has no change feed)";
    $("rate-text").textContent = `${total} scans in the last hour; ${buckets[59]} this minute; peak ${Math.max(...buckets)} per minute (${clocks}).`;
  }

  // -- a line's figures, in its own unit ------------------------------------------------

  const isPieces = (unit) => PIECE_UNITS.has(String(unit || "H87").toUpperCase());

  // An amount in its unit: "313 g", "2 kg", "5" (pieces need no word on a card).
  function amount(n, unit) {
    if (isPieces(unit)) return String(n);
    const symbol = UNIT_SYMBOLS[String(unit).toUpperCase()];
    return symbol ? `${n} ${symbol}` : `${n} ${unit}`;
  }

  // The packingStatus rule for one entry: packed + cancelled reach the ordered amount; a
  // weighed entry is done once anything is packed (its weight is never exact).
  function lineDone(e) {
    const packed = e.packedCount || 0;
    if (e.weightDependent) return packed > 0;
    return packed + (e.canceledCount || 0) >= (e.totalCount || 0);
  }

  // One line's figures in its unit, with what is off said as such: "313 g of 301 g ·
  // 12 g over", "280 g of 301 g · 21 g short", "7 of 8 · 1 cancelled".
  function lineFigures(e) {
    const unit = e.orderUnit || "H87";
    const total = e.totalCount || 0;
    const packed = e.packedCount || 0;
    const cancelled = e.canceledCount || 0;
    const parts = [`${amount(packed, unit)} of ${amount(total, unit)}`];
    if (cancelled) parts.push(`${amount(cancelled, unit)} cancelled`);
    const open = total - packed - cancelled;
    if (packed + cancelled > total) parts.push(`${amount(packed + cancelled - total, unit)} over`);
    else if (e.weightDependent && packed > 0 && open > 0) parts.push(`${amount(open, unit)} short`);
    return parts.join(" · ");
  }

  function lineView(e) {
    const done = lineDone(e);
    const name = e.productName || e.productId;
    return el(
      "span",
      { class: `line${done ? " line-done" : ""}`, "data-product-id": e.productId, "data-done": done ? "true" : "false" },
      el("span", { class: "line-mark", "aria-hidden": "true", text: done ? "✓" : "·" }),
      el("span", { class: "line-name", text: `${name}: ` }),
      el("span", { class: "line-figures", text: lineFigures(e) }),
      done ? el("span", { class: "visually-hidden", text: " (done)" }) : null,
    );
  }

  function card(order) {
    const entries = order.entries || [];
    const lines = entries.length;
    const done = entries.filter(lineDone).length;
    const cancelledOrder = order.packingStatus === "CANCELLED";
    const share = lines ? (100 * done) / lines : 0;
    const progress = cancelledOrder
      ? `Order cancelled · ${done} of ${lines} lines were done`
      : lines
        ? `${done} of ${lines} lines done`
        : "No lines";
    const bar = el(
      "div",
      { class: "bar", role: "img", "aria-label": progress },
      el("div", { class: cancelledOrder ? "bar-cancelled" : "bar-packed" }),
    );
    bar.children[0].style.width = `${share}%`;
    const first = board.firstScan.get(order.orderId);
    const assignees = (order.assignees || []).map(assigneeName).join(", ");
    const button = el(
      "button",
      {
        type: "button",
        class: `card status-${order.packingStatus}`,
        "data-order-id": order.orderId,
        "data-status": order.packingStatus,
        "data-lines": String(lines),
        "data-lines-done": String(done),
        "aria-haspopup": "dialog",
      },
      el("span", { class: "card-head" }, el("strong", { class: "order-id", text: order.orderId }), statusBadge(order.packingStatus)),
      order.customerName ? el("span", { class: "customer", text: order.customerName }) : null,
      bar,
      el("span", { class: "progress-text", text: progress }),
      el("span", { class: "lines" }, entries.map(lineView)),
      el(
        "span",
        { class: "facts" },
        el("span", { class: "assignee", text: assignees ? `Assignee: ${assignees}` : "Unassigned" }),
        el("span", { class: "holding", text: order.holdingAreaNumber ? `Holding area ${order.holdingAreaNumber}` : "No holding area" }),
        el("span", { class: "since", text: firstScanText(first) }),
      ),
    );
    button.addEventListener("click", () => openDetail(order.orderId));
    return el("li", {}, button);
  }

  // "First scan 12 min ago", from when the ledger recorded it; a scanner whose clock is
  // off says what it showed, so a wrong clock is seen rather than believed.
  function firstScanText(first) {
    if (!first) return "Not scanned yet";
    const text = `First scan ${since(first.at)} ago`;
    if (board.clock === "ledger" && !Number.isNaN(first.scannerAt) && Math.abs(first.scannerAt - first.at) > SKEW_SHOWN_MS) {
      return `${text} (scanner clock said ${dayClock(first.scannerAt)})`;
    }
    return text;
  }

  const dayClock = (ms) =>
    new Date(ms).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

  function notice(text, kind) {
    const node = $("notice");
    node.textContent = text;
    node.dataset.kind = kind;
    node.hidden = false;
  }

  function message(text) {
    const node = $("message");
    node.textContent = text;
    node.hidden = false;
  }

  function setLive(text, kind) {
    const node = $("live");
    node.textContent = text;
    node.dataset.kind = kind;
  }

  // -- the order's detail ----------------------------------------------------------------

  function openDetail(orderId) {
    board.detail = orderId;
    board.opened = orderId;
    $("detail-title").textContent = `Order ${orderId}`;
    $("detail-body").replaceChildren(el("p", { text: "Loading…" }));
    const dialog = $("detail");
    if (!dialog.open) dialog.showModal();
    loadDetail(orderId, run);
  }

  function closeDetail() {
    const dialog = $("detail");
    board.detail = null;
    if (dialog.open) dialog.close();
  }

  async function loadDetail(orderId, myRun) {
    try {
      const [order, story] = await Promise.all([
        api(`orders/${encodeURIComponent(orderId)}`, myRun),
        orderStory(orderId, myRun),
      ]);
      if (board.detail !== orderId) return;
      $("detail-body").replaceChildren(...detailView(order, story));
    } catch (error) {
      if (error instanceof Stopped) return;
      if (fatal(error)) return failed(error);
      if (board.detail === orderId) $("detail-body").replaceChildren(el("p", { class: "message", text: `Could not load the order: ${error.message}` }));
    }
  }

  // The order's history (every fact, paged by position); where the service has none, its
  // scans from GET /events.
  async function orderStory(orderId, myRun) {
    const items = [];
    let after = 0;
    try {
      for (let pages = 0; pages < 20; pages += 1) {
        const page = await api(`orders/${encodeURIComponent(orderId)}/history?after=${after}&limit=1000`, myRun);
        items.push(...page.items);
        if (page.next === null || page.next === undefined) return { items, complete: true };
        after = page.next;
      }
      return { items, complete: false };
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
    const scans = [];
    for (let pageNumber = 1; pageNumber <= 20; pageNumber += 1) {
      const page = await api(`events?pageNumber=${pageNumber}&pageSize=5000`, myRun);
      for (const scan of page) {
        if (scan.orderNumber === orderId) {
          scans.push({ position: null, recordedAt: scan.timestamp, type: "PackingEventRecorded", user: scan.user, data: scan });
        }
      }
      if (page.length < 5000) break;
    }
    return { items: scans, complete: true, scansOnly: true };
  }

  function detailView(order, story) {
    const parts = [];
    const assignees = (order.assignees || []).map(assigneeName).join(", ") || "none";
    parts.push(
      el(
        "dl",
        { class: "order-facts" },
        el("dt", { text: "Status" }), el("dd", {}, statusBadge(order.packingStatus)),
        el("dt", { text: "Assignees" }), el("dd", { text: assignees }),
        el("dt", { text: "Holding area" }), el("dd", { text: order.holdingAreaNumber ? String(order.holdingAreaNumber) : "none yet" }),
        el("dt", { text: "Site" }), el("dd", { text: order.siteCode || "?" }),
      ),
    );
    const head = ["Product", "Unit", "Total", "Picked", "Packed", "Cancelled", "Packed (pieces)"];
    parts.push(
      el("h3", { text: "Entries" }),
      el(
        "div",
        { class: "table-wrap" },
        el(
          "table",
          { class: "entries" },
          el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col", text: h })))),
          el(
            "tbody",
            {},
            (order.entries || []).map((e) =>
              el(
                "tr",
                { "data-product-id": e.productId },
                el("th", { scope: "row" }, e.productName ? `${e.productName} ` : "", el("code", { text: e.productId })),
                el("td", { text: e.orderUnit || "" }),
                el("td", { class: "num", text: String(e.totalCount ?? "") }),
                el("td", { class: "num", text: String(e.pickedCount ?? 0) }),
                el("td", { class: "num packed", text: String(e.packedCount ?? 0) }),
                el("td", { class: "num", text: String(e.canceledCount ?? 0) }),
                el("td", { class: "num", text: e.packedAmountInPc === undefined ? "–" : String(e.packedAmountInPc) }),
              ),
            ),
          ),
        ),
      ),
    );
    if (Array.isArray(order.unreconciledAmounts) && order.unreconciledAmounts.length) {
      parts.push(
        el("h3", { text: "Unreconciled amounts" }),
        el("p", { class: "hint", text: "Amounts in a unit no entry counts (not a whole number of the entry's unit, or a product the order does not list)." }),
        el(
          "table",
          { class: "unreconciled" },
          el("thead", {}, el("tr", {}, ["Product", "Unit", "Picked", "Packed", "Cancelled"].map((h) => el("th", { scope: "col", text: h })))),
          el(
            "tbody",
            {},
            order.unreconciledAmounts.map((u) =>
              el("tr", {}, el("th", { scope: "row", text: u.productId }), el("td", { text: u.unit }),
                el("td", { class: "num", text: String(u.pickedAmount) }), el("td", { class: "num", text: String(u.packedAmount) }),
                el("td", { class: "num", text: String(u.canceledAmount) })),
            ),
          ),
        ),
      );
    }
    parts.push(el("h3", { text: "History" }));
    if (story.scansOnly) parts.push(el("p", { class: "hint", text: "History unavailable on this service: its scans from GET /events only." }));
    if (!story.complete) parts.push(el("p", { class: "hint", text: "Only the first 20,000 facts are shown." }));
    parts.push(el("ol", { class: "timeline", id: "timeline" }, story.items.map(timelineItem)));
    return parts;
  }

  function timelineItem(item) {
    const at = Date.parse(item.recordedAt);
    return el(
      "li",
      { "data-type": item.type },
      el("time", { datetime: item.recordedAt, text: Number.isNaN(at) ? item.recordedAt : clock(at) }),
      " ",
      el("strong", { text: FACTS[item.type] || item.type }),
      item.user ? el("span", { class: "who", text: ` by ${item.user}` }) : null,
      el("span", { class: "what", text: describe(item) }),
    );
  }

  // Scans add (non-negative amounts); corrections are signed deltas, shown with a sign.
  function amounts(d, signed) {
    const parts = [];
    for (const [key, word] of [["pickedAmount", "picked"], ["packedAmount", "packed"], ["canceledAmount", "cancelled"]]) {
      if (d[key]) parts.push(`${signed && d[key] > 0 ? "+" : ""}${d[key]} ${word}`);
    }
    return parts.join(", ") || "nothing";
  }

  function describe(item) {
    const d = item.data || {};
    switch (item.type) {
      case "PackingEventRecorded":
        return `: ${d.productId}: ${amounts(d, false)} ${d.unit || ""}` + (d.timestamp ? ` (scanner time ${clock(Date.parse(d.timestamp))})` : "");
      case "CorrectionRecorded":
        return `: ${d.productId}: ${amounts(d, true)} ${d.unit || ""}, reason: ${d.reason}`;
      case "PackingStatusChanged":
        return `: ${LABELS[d.packingStatus] || d.packingStatus}`;
      case "AssigneeAdded":
        return d.assignee ? `: ${assigneeName(d.assignee)}` : "";
      case "AssigneeRemoved":
        return `: ${d.assigneeId}`;
      case "HoldingAreaAssigned":
        return `: ${d.holdingAreaNumber}`;
      case "OrderFinished":
      case "RecalculationDelivery": {
        const delivery = d.delivery;
        return delivery ? `: Order Service ${delivery.status} after ${delivery.attempts} attempt(s)` : "";
      }
      default:
        return "";
    }
  }

  // -- events ----------------------------------------------------------------------------

  function navigate(changes) {
    const next = { ...config, ...changes };
    location.hash = writeFragment(next);
  }

  document.addEventListener("DOMContentLoaded", () => {
    window.addEventListener("hashchange", () => {
      const now = readFragment();
      // Filters only: no new connection.
      if (config && ["tenant", "token", "site", "date"].every((k) => now[k] === config[k] || (k === "date" && !now.date))) {
        config.status = now.status;
        config.assignee = now.assignee;
        render();
        return;
      }
      start();
    });
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token-input").value.trim();
      const hash = writeFragment({
        token,
        tenant: $("tenant-input").value.trim() || tokenTenant(token),
        site: $("site-input").value.trim(),
        date: $("date-input").value,
      });
      $("token-input").value = "";
      // The same address again (a token pasted twice) fires no hashchange: start anyway.
      if (location.hash === hash) start();
      else location.hash = hash;
    });
    $("pickers").addEventListener("submit", (event) => {
      event.preventDefault();
      navigate({ site: $("site").value.trim(), date: $("date").value || today() });
    });
    $("change-token").addEventListener("click", () => {
      run += 1;
      closeDetail();
      config = { ...config, token: "" };
      history.replaceState(null, "", writeFragment(config));
      showTokenForm("");
    });
    $("filter-status").addEventListener("change", (event) => navigate({ status: event.target.value }));
    $("filter-assignee").addEventListener("change", (event) => navigate({ assignee: event.target.value }));
    $("detail-close").addEventListener("click", closeDetail);
    $("detail").addEventListener("close", () => {
      // Back to the order's card (re-rendered since, so found again by its id).
      const opened = board.opened;
      board.detail = null;
      const again = opened && $("orders").querySelector(`[data-order-id="${CSS.escape(opened)}"]`);
      if (again) again.focus();
    });
    // Arrow keys move between the cards (Tab and Enter work as everywhere).
    $("orders").addEventListener("keydown", (event) => {
      const cards = [...$("orders").querySelectorAll(".card")];
      const index = cards.indexOf(document.activeElement);
      if (index < 0) return;
      const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, Home: -Infinity, End: Infinity }[event.key];
      if (step === undefined) return;
      event.preventDefault();
      const target = Math.max(0, Math.min(cards.length - 1, index + step));
      cards[target].focus();
    });
    start();
  });
})();
