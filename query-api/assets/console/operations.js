// Operations (/console/operations): the dashboard summary of a window,
// polled every five seconds and drawn as SVG: throughput, alerts,
// decisions, projection lag (sampled by this page, so it grows into a
// chart while the page is open), data quality and the projectors.
(function () {
  'use strict';
  var S = window.Sentinel, el = S.el;
  var EVERY_MS = 5000;
  var QUERY = 'query Ops($window: TimeWindow!) { dashboard(window: $window) {' +
    ' from to transactionsPerMinute lateEvents' +
    ' intake { accepted quarantined late repeats conflictingRepeats approved reviewed declined alerts }' +
    ' throughput { start perMinute accepted quarantined alerts }' +
    ' decisions { decision count }' +
    ' alertsByPriority { priority raised open }' +
    ' quarantineByReason { field reason count }' +
    ' projectionLag { maxEvents maxSeconds endToEnd { samples p50Ms p95Ms p99Ms maxMs } } }' +
    ' projections { name role partitionIndex partitionCount state checkpoint head lagEvents lagSeconds deadLetters lastError } }';
  var lagSamples = [];

  function hhmm(iso) { return new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }); }

  function tiles(d) {
    var i = d.intake;
    var open = d.alertsByPriority.reduce(function (n, p) { return n + p.open; }, 0);
    var rate = i.accepted ? (100 * i.alerts / i.accepted) : 0;
    var items = [
      ['Transactions / min', S.num(d.transactionsPerMinute, 1)],
      ['Accepted', S.num(i.accepted, 0)],
      ['Alert rate', S.num(rate, 2) + ' %'],
      ['Open alerts', S.num(open, 0)],
      ['Quarantined', S.num(i.quarantined, 0)],
      ['Projection lag', S.num(d.projectionLag.maxEvents, 0) + ' ev · ' + S.num(d.projectionLag.maxSeconds, 1) + ' s'],
    ];
    var box = S.clear(document.getElementById('tiles'));
    items.forEach(function (t) { box.appendChild(el('div', null, el('div', { class: 'v' }, t[1]), el('div', { class: 'k' }, t[0]))); });
  }

  function render(data) {
    var d = data.dashboard;
    tiles(d);
    var labels = d.throughput.map(function (b) { return hhmm(b.start); });
    S.clear(document.getElementById('chart-throughput')).appendChild(S.lineChart(
      [{ values: d.throughput.map(function (b) { return b.perMinute; }) }], labels,
      'Accepted transactions per minute, ' + labels[0] + ' to ' + labels[labels.length - 1]));
    S.clear(document.getElementById('chart-alerts')).appendChild(S.lineChart(
      [{ values: d.throughput.map(function (b) { return b.alerts; }), cls: 'alt' },
       { values: d.throughput.map(function (b) { return b.quarantined; }) }], labels,
      'Alerts (red) and quarantined inputs (blue) per bucket'));
    S.clear(document.getElementById('chart-decisions')).appendChild(S.barChart(
      d.decisions.map(function (x) { return { label: x.decision.toLowerCase(), value: x.count }; })
        .concat(d.alertsByPriority.map(function (p) { return { label: p.priority + ' raised (open ' + p.open + ')', value: p.raised }; })),
      'Decisions and alerts by priority in the window'));
    lagSamples.push(d.projectionLag.maxEvents);
    if (lagSamples.length > 120) lagSamples.shift();
    S.clear(document.getElementById('chart-lag')).appendChild(S.lineChart(
      [{ values: lagSamples }], ['', 'now'],
      'Largest projector lag in events, sampled every 5 s: now ' + d.projectionLag.maxEvents));
    var e = d.projectionLag.endToEnd;
    var q = S.clear(document.getElementById('quality'));
    q.appendChild(el('p', null, 'Recording to projection: p50 ' + S.num(e.p50Ms, 0) + ' ms, p95 ' + S.num(e.p95Ms, 0) +
      ' ms, p99 ' + S.num(e.p99Ms, 0) + ' ms over ' + S.num(e.samples, 0) + ' events. Late: ' + S.num(d.intake.late, 0) +
      '. Repeats: ' + S.num(d.intake.repeats, 0) + ' (conflicting ' + S.num(d.intake.conflictingRepeats, 0) + ').'));
    if (d.quarantineByReason.length) {
      q.appendChild(S.barChart(d.quarantineByReason.map(function (r) { return { label: r.field + ': ' + r.reason, value: r.count }; }),
        'Quarantined inputs by field and reason'));
    } else {
      q.appendChild(el('p', { class: 'hint' }, 'Nothing quarantined in the window.'));
    }
    var p = S.clear(document.getElementById('projections'));
    p.appendChild(el('table', null,
      el('thead', null, el('tr', null, ['Projector', 'State', 'Checkpoint', 'Lag', 'Dead letters'].map(function (h) { return el('th', { scope: 'col' }, h); }))),
      el('tbody', null, data.projections.map(function (x) {
        return el('tr', null,
          el('td', null, x.name + (x.partitionCount > 1 ? ' ' + x.partitionIndex + '/' + x.partitionCount : '') + (x.role !== 'live' ? ' (' + x.role + ')' : '')),
          el('td', { class: x.state === 'live' ? 'ok' : 'error' }, x.state),
          el('td', { class: 'num' }, S.num(x.checkpoint, 0) + ' / ' + S.num(x.head, 0)),
          el('td', { class: 'num' }, S.num(x.lagEvents, 0) + ' ev · ' + S.num(x.lagSeconds, 1) + ' s'),
          el('td', { class: 'num' + (x.deadLetters ? ' error' : '') }, S.num(x.deadLetters, 0)));
      }))));
    document.getElementById('ops-updated').textContent = 'Updated ' + new Date().toLocaleTimeString();
    document.body.setAttribute('data-ready', 'true');
  }

  var timer = null;
  function poll() {
    clearTimeout(timer);
    var w = document.getElementById('window').value;
    S.gql(QUERY, { window: w }).then(render).catch(function (e) {
      document.getElementById('ops-updated').textContent = 'Could not load: ' + e.message;
    }).then(function () { timer = setTimeout(poll, EVERY_MS); });
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.getElementById('window').addEventListener('change', function () { lagSamples = []; poll(); });
    var live = document.getElementById('live');
    live.className = 'live on';
    live.textContent = 'Refreshing every 5 s';
    poll();
  });
})();
