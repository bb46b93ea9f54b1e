// The alert queue (/console/): alerts newest first under the filters,
// new ones arriving live over the `alertRaised` subscription, keyboard
// navigation (j / k / Enter), and a page at a time ("Load more").
(function () {
  'use strict';
  var S = window.Sentinel, el = S.el;
  var PAGE = 50;
  var FIELDS = 'id priority status riskScore customerId amount currency raisedAt ' +
    'rulesFired { rule observed comparison threshold }';
  var QUERY = 'query Queue($filter: AlertFilter, $first: Int!, $after: String) {' +
    ' alerts(filter: $filter, first: $first, after: $after) { totalCount' +
    ' pageInfo { hasNextPage endCursor } nodes { ' + FIELDS + ' } } }';
  var SUBSCRIPTION = 'subscription Live { alertRaised(minPriority: P3) { ' + FIELDS + ' } }';

  var form, body, summary, more;
  var cursor = null, total = 0, shown = 0, selected = -1, generation = 0;
  var seen = {};

  function filter() {
    var f = {};
    var priorities = Array.prototype.slice.call(form.querySelectorAll('input[name=priority]:checked'))
      .map(function (i) { return i.value; });
    if (priorities.length < 4) f.priority = priorities;
    var status = form.elements.status.value;
    if (status) f.status = [status];
    var rule = form.elements.rule.value.trim();
    if (rule) f.rule = rule;
    if (form.elements.from.value) f.from = new Date(form.elements.from.value).toISOString();
    if (form.elements.to.value) f.to = new Date(form.elements.to.value).toISOString();
    return f;
  }

  // Whether a pushed alert belongs under the current filters.
  function matches(a, f) {
    if (f.priority && f.priority.indexOf(a.priority) < 0) return false;
    if (f.status && f.status.indexOf(a.status) < 0) return false;
    if (f.rule && !a.rulesFired.some(function (h) { return h.rule === f.rule; })) return false;
    if (f.from && new Date(a.raisedAt) < new Date(f.from)) return false;
    if (f.to && new Date(a.raisedAt) >= new Date(f.to)) return false;
    return true;
  }

  function row(a, isNew) {
    var open = function () { window.location.href = '/console/alerts/' + a.id; };
    var tr = el('tr', {
      'data-id': a.id, 'data-raised': a.raisedAt, tabindex: '-1', 'aria-selected': 'false', class: isNew ? 'new' : null,
      onclick: open,
    },
      el('td', null, S.prio(a.priority)),
      el('td', null, el('time', { datetime: a.raisedAt, title: S.time(a.raisedAt) }, S.time(a.raisedAt))),
      el('td', null, el('a', { href: '/console/alerts/' + a.id }, a.customerId)),
      el('td', { class: 'num' }, S.num(a.riskScore, 3)),
      el('td', { class: 'num' }, S.money(a.amount, a.currency)),
      el('td', null, S.status(a.status)),
      el('td', null, el('ul', { class: 'rules' }, a.rulesFired.map(function (h) {
        return el('li', null, S.ruleText(h));
      }))));
    a.rulesFired.forEach(function (h) { addRuleName(h.rule); });
    return tr;
  }

  var ruleNames = {};
  function addRuleName(name) {
    if (ruleNames[name]) return;
    ruleNames[name] = true;
    document.getElementById('rule-names').appendChild(el('option', { value: name }));
  }

  function rows() { return Array.prototype.slice.call(body.querySelectorAll('tr')); }

  function select(i, focus) {
    var all = rows();
    if (!all.length) { selected = -1; return; }
    i = Math.max(0, Math.min(all.length - 1, i));
    all.forEach(function (r, j) { r.setAttribute('aria-selected', j === i ? 'true' : 'false'); });
    selected = i;
    if (focus) { all[i].focus(); all[i].scrollIntoView({ block: 'nearest' }); }
  }

  function describe() {
    summary.textContent = total === 0 ? 'No alert matches the filters; new ones appear here as they are raised.' :
      'Showing ' + shown + ' of ' + total + ' alerts, newest first.';
    more.hidden = !cursor;
  }

  function load(reset) {
    var mine = reset ? ++generation : generation;
    if (reset) { cursor = null; seen = {}; }
    summary.textContent = 'Loading…';
    return S.gql(QUERY, { filter: filter(), first: PAGE, after: cursor }).then(function (data) {
      if (mine !== generation) return;
      var page = data.alerts;
      if (reset) { S.clear(body); shown = 0; selected = -1; }
      page.nodes.forEach(function (a) {
        if (seen[a.id]) return;
        seen[a.id] = true;
        body.appendChild(row(a, false));
        shown++;
      });
      total = page.totalCount;
      cursor = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
      describe();
      if (selected < 0 && shown) select(0, false);
      if (reset && !document.body.hasAttribute('data-ready') && window.performance && performance.mark) {
        // First page interactive (docs/benchmarks.md measures it).
        performance.mark('sentinel-queue-ready');
      }
      document.body.setAttribute('data-ready', 'true');
    }).catch(function (e) {
      summary.textContent = 'Could not load the alerts: ' + e.message;
      summary.className = 'hint error';
    });
  }

  function arrived(data) {
    var a = data.alertRaised;
    if (!a || seen[a.id] || !matches(a, filter())) return;
    seen[a.id] = true;
    // In its place by time raised (newest first): live alerts are almost
    // always the newest, but a late transaction's alert is not.
    var tr = row(a, true);
    var all = rows(), at = all.length;
    for (var i = 0; i < all.length; i++) {
      if (new Date(all[i].getAttribute('data-raised')) <= new Date(a.raisedAt)) { at = i; break; }
    }
    body.insertBefore(tr, all[at] || null);
    shown++; total++;
    if (selected >= 0 && at <= selected) selected++;
    describe();
    S.announce('New ' + a.priority + ' alert for customer ' + a.customerId);
  }

  function keys(e) {
    if (e.target.closest && e.target.closest('input, select, textarea, dialog')) return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === 'j') { select(selected + 1, true); e.preventDefault(); }
    else if (e.key === 'k') { select(selected - 1, true); e.preventDefault(); }
    else if (e.key === 'Enter' && selected >= 0) {
      var r = rows()[selected];
      if (r) { window.location.href = '/console/alerts/' + r.getAttribute('data-id'); e.preventDefault(); }
    }
  }

  document.addEventListener('DOMContentLoaded', function () {
    form = document.getElementById('filters');
    body = document.querySelector('#queue tbody');
    summary = document.getElementById('queue-summary');
    more = document.getElementById('more');
    form.addEventListener('change', function () { load(true); });
    form.addEventListener('submit', function (e) { e.preventDefault(); load(true); });
    more.addEventListener('click', function () { load(false); });
    document.addEventListener('keydown', keys);
    load(true);
    S.subscribe(SUBSCRIPTION, {}, arrived);
  });
})();
