// telemesh summary page script (vendored, no dependencies): re-renders the server-rendered
// part of the page when a snapshot arrives over server-sent events (/api/v1/stream) and every
// 30 s (ages move on), and lists open alerts from /api/v1/alerts with acknowledge/resolve
// actions that send the bearer token the person types. Every value from the API is written
// with textContent, never as markup.
(function () {
  'use strict';
  var kind = document.body.getAttribute('data-live-kind') || '';
  var statusEl = document.getElementById('live-status');
  function say(text) { if (statusEl) { statusEl.textContent = text; } }

  // ---- live refresh of #live -------------------------------------------------------------
  var timer = null;
  function refresh() {
    timer = null;
    fetch(window.location.href, { headers: { Accept: 'text/html' }, cache: 'no-store' })
      .then(function (r) { if (!r.ok) { throw new Error('HTTP ' + r.status); } return r.text(); })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, 'text/html');
        var fresh = doc.getElementById('live');
        var current = document.getElementById('live');
        if (fresh && current) { current.replaceWith(document.importNode(fresh, true)); }
        document.title = doc.title;
        say('live · updated ' + new Date().toLocaleTimeString());
      })
      .catch(function (e) { say('update failed (' + e.message + '); retrying'); });
  }
  // at most one re-render every 2 s however fast snapshots arrive (each costs the server a
  // summary and a history query)
  var last = 0;
  function soon() {
    if (timer) { return; }
    var wait = Math.max(200, 2000 - (Date.now() - last));
    timer = setTimeout(function () { last = Date.now(); refresh(); loadAlerts(); }, wait);
  }
  if (window.EventSource) {
    var url = '/api/v1/stream' + (kind ? '?kind=' + encodeURIComponent(kind) : '');
    var source = new EventSource(url);
    source.addEventListener('open', function () { say('live'); });
    source.addEventListener('snapshot', soon);
    source.addEventListener('error', function () { say('connection lost; reconnecting…'); });
  }
  setInterval(function () { refresh(); loadAlerts(); }, 30000);

  // ---- alerts --------------------------------------------------------------------------
  var table = document.getElementById('alerts-table');
  var alertsStatus = document.getElementById('alerts-status');
  var form = document.getElementById('alert-action');
  // the outcome of the last acknowledge/resolve has its own line: the list's status is
  // rewritten on every refresh, and a refusal must stay until the person acts again
  var actionResult = document.getElementById('alert-action-result');
  function tell(text) { if (actionResult) { actionResult.textContent = text; } }
  var tbody = table ? table.querySelector('tbody') : null;

  function cell(row, text) {
    var td = document.createElement('td');
    td.textContent = text == null ? '' : String(text);
    row.appendChild(td);
    return td;
  }
  function age(iso) {
    var s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (!isFinite(s)) { return ''; }
    if (s < 120) { return Math.round(s) + 's'; }
    if (s < 7200) { return Math.round(s / 60) + 'm'; }
    return (s / 3600).toFixed(1) + 'h';
  }
  var SYMBOL = { ok: '✓', warn: '▲', fail: '✕' };
  function badge(td, grade) {
    td.textContent = '';
    var span = document.createElement('span');
    var g = SYMBOL[grade] ? grade : 'none';
    span.className = 'badge grade-' + g;
    span.textContent = (SYMBOL[grade] || '·') + ' ' + String(grade).toUpperCase();
    td.appendChild(span);
  }
  function button(td, label, alert, action) {
    var b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.setAttribute('data-action', action);
    b.setAttribute('aria-label', label + ' alert: ' + alert.summary);
    b.addEventListener('click', function () { openForm(alert, action); });
    td.appendChild(b);
    td.appendChild(document.createTextNode(' '));
  }

  function loadAlerts() {
    if (!tbody) { return; } // pages without the alerts section
    fetch('/api/v1/alerts?state=open', { cache: 'no-store' })
      .then(function (r) {
        return r.json().then(function (body) { return { status: r.status, body: body }; });
      })
      .then(function (res) {
        if (res.status === 404) { alertsStatus.textContent = res.body.detail || 'alerting is disabled'; table.hidden = true; return; }
        if (res.status !== 200) { alertsStatus.textContent = 'alerts unavailable: ' + (res.body.detail || res.status); return; }
        var alerts = res.body.alerts || [];
        tbody.textContent = '';
        alerts.forEach(function (a) {
          var row = document.createElement('tr');
          row.setAttribute('data-alert-id', a.id);
          badge(cell(row, ''), a.grade);
          var domainTd = cell(row, '');
          var link = document.createElement('a');
          link.href = '/domains/' + encodeURIComponent(a.kind);
          link.textContent = a.kind;
          domainTd.appendChild(link);
          cell(row, a.service);
          cell(row, a.summary);
          cell(row, a.state + (a.acknowledged_at ? ' · acknowledged' : ''));
          cell(row, a.acknowledged_by || 'unowned');
          cell(row, age(a.opened_at || a.pending_since));
          var actions = cell(row, '');
          if (!a.acknowledged_at) { button(actions, 'Acknowledge', a, 'ack'); }
          button(actions, 'Resolve', a, 'resolve');
          tbody.appendChild(row);
        });
        table.hidden = alerts.length === 0;
        alertsStatus.textContent = alerts.length === 0 ? 'No open alerts.' : alerts.length + ' open alert' + (alerts.length === 1 ? '' : 's') + '.';
      })
      .catch(function (e) { alertsStatus.textContent = 'alerts unavailable: ' + e.message; });
  }

  function openForm(alert, action) {
    form.elements.id.value = alert.id;
    form.elements.action.value = action;
    document.getElementById('alert-action-legend').textContent =
      (action === 'ack' ? 'Acknowledge' : 'Resolve') + ': ' + alert.summary;
    var saved = window.localStorage ? localStorage.getItem('telemesh.by') : null;
    if (saved && !form.elements.by.value) { form.elements.by.value = saved; }
    tell('');
    form.hidden = false;
    (form.elements.by.value ? form.elements.token : form.elements.by).focus();
  }
  if (!form) { return; }
  document.getElementById('alert-action-cancel').addEventListener('click', function () { form.hidden = true; tell(''); });
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var id = form.elements.id.value;
    var action = form.elements.action.value === 'ack' ? 'ack' : 'resolve';
    var body = { by: form.elements.by.value };
    if (form.elements.note.value) { body.note = form.elements.note.value; }
    if (window.localStorage) { localStorage.setItem('telemesh.by', body.by); }
    fetch('/api/v1/alerts/' + encodeURIComponent(id) + '/' + action, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + form.elements.token.value },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (b) { return { status: r.status, body: b }; });
    }).then(function (res) {
      if (res.status === 200) {
        tell((action === 'ack' ? 'Acknowledged' : 'Resolved') + ' by ' + body.by + '.');
        form.hidden = true;
        form.elements.token.value = '';
        loadAlerts();
      } else {
        tell('Refused (' + res.status + '): ' + (res.body.detail || res.body.error));
      }
    }).catch(function (e) { tell('Request failed: ' + e.message); });
  });
  loadAlerts();
}());
