// The case view (/console/alerts/{id}): why the alert was raised (rules
// with observed values and thresholds, the model's score and top
// features), the transaction, the customer's recent places drawn locally
// (SVG, no tiles), the timeline (this transaction's audit trail from the
// log and the customer's recent transactions), and the actions
// (acknowledge, resolve with a verdict, label), forwarded to the command
// service by the query API.
(function () {
  'use strict';
  var S = window.Sentinel, el = S.el;
  var QUERY = 'query Case($id: UUID!) { alert(id: $id) {' +
    ' id priority status riskScore decision rulesetVersion modelVersion modelScore' +
    ' rulesFired { rule ruleVersion observed comparison threshold weight detail }' +
    ' topFeatures { feature value contribution }' +
    ' transactionId customerId merchantId amount currency raisedAt raisedPosition' +
    ' acknowledgedAt acknowledgedBy acknowledgedNote resolvedAt resolvedBy verdict resolutionNote' +
    ' transaction { id eventTime recordedTime merchantCategory transactionType paymentMethod deviceType' +
    '   city country latitude longitude decision late label { isFraud source labeledAt }' +
    '   auditTrail { position type streamId eventTime recordedTime payload } }' +
    ' customer { id profile { transactionCount amountMean amountStdDev riskLevel home { city country } }' +
    '   geo { distinctCities impossibleTravelCount' +
    '     cardPresentSightings { transactionId city country latitude longitude at }' +
    '     recentCities { transactionId city country latitude longitude at }' +
    '     impossibleTravel(first: 5) { transactionId distanceKm hours speedKmh from { city } to { city } } }' +
    '   transactions(first: 15) { nodes { id eventTime amount currency decision riskScore rulesetVersion city country' +
    '     alert { id priority status verdict } label { isFraud source } } } } } }';

  var root, alertId, current;

  function dl(target, pairs) {
    S.clear(target);
    pairs.forEach(function (p) {
      if (p[1] === null || p[1] === undefined || p[1] === '') return;
      target.appendChild(el('dt', null, p[0]));
      target.appendChild(el('dd', null, p[1]));
    });
  }

  function why(a) {
    var box = S.clear(document.getElementById('why'));
    if (!a.rulesFired.length) box.appendChild(el('p', null, 'No rule fired: the score is the model\'s.'));
    else box.appendChild(el('table', null,
      el('thead', null, el('tr', null,
        el('th', { scope: 'col' }, 'Rule'), el('th', { scope: 'col', class: 'num' }, 'Observed'),
        el('th', { scope: 'col', class: 'num' }, 'Threshold'), el('th', { scope: 'col', class: 'num' }, 'Weight'),
        el('th', { scope: 'col' }, 'What was seen'))),
      el('tbody', null, a.rulesFired.map(function (h) {
        return el('tr', null,
          el('td', null, el('b', null, h.rule), ' v' + h.ruleVersion),
          el('td', { class: 'num' }, S.num(h.observed, 3)),
          el('td', { class: 'num' }, h.comparison === 'holds' ? 'holds' :
            ({ greater_than: '> ', at_least: '≥ ', at_most: '≤ ' }[h.comparison] || '') + S.num(h.threshold, 3)),
          el('td', { class: 'num' }, S.num(h.weight, 2)),
          el('td', null, h.detail));
      }))));
    var model = a.modelVersion
      ? ['Model ', el('b', null, a.modelVersion), ': probability of fraud ', S.num(a.modelScore, 3)]
      : ['No model scored this decision.'];
    box.appendChild(el('p', null, model));
    if (a.topFeatures.length) {
      box.appendChild(el('table', null,
        el('caption', { class: 'hint' }, 'Top features (what pushed the model\'s score up)'),
        el('thead', null, el('tr', null, el('th', { scope: 'col' }, 'Feature'),
          el('th', { scope: 'col', class: 'num' }, 'Value'), el('th', { scope: 'col', class: 'num' }, 'Contribution (log-odds)'))),
        el('tbody', null, a.topFeatures.map(function (f) {
          return el('tr', null, el('td', null, el('code', null, f.feature)),
            el('td', { class: 'num' }, S.num(f.value, 3)), el('td', { class: 'num' }, '+' + S.num(f.contribution, 3)));
        }))));
    }
  }

  // The places on a plot of their own bounding box (longitude scaled by
  // the cosine of the mean latitude, so distances look right; no map
  // tiles: nothing leaves the browser), joined in time order; impossible
  // trips dashed red with their speed. Below, every leg as a table.
  function places(a) {
    var box = S.clear(document.getElementById('places'));
    var geo = a.customer.geo;
    var pts = geo ? (geo.cardPresentSightings.length ? geo.cardPresentSightings : geo.recentCities) : [];
    if (!pts.length) { box.appendChild(el('p', { class: 'hint' }, 'No located transaction.')); return; }
    var fast = {};
    (geo.impossibleTravel || []).forEach(function (t) { fast[t.transactionId] = t; });
    var W = 560, H = 260, PL = 24, PR = 110, PT = 24, PB = 24;
    var meanLat = pts.reduce(function (n, p) { return n + p.latitude; }, 0) / pts.length;
    var k = Math.cos(meanLat * Math.PI / 180);
    var xs = pts.map(function (p) { return p.longitude * k; }), ys = pts.map(function (p) { return p.latitude; });
    var minX = Math.min.apply(null, xs), maxX = Math.max.apply(null, xs);
    var minY = Math.min.apply(null, ys), maxY = Math.max.apply(null, ys);
    var scale = Math.min((W - PL - PR) / Math.max(maxX - minX, 0.01), (H - PT - PB) / Math.max(maxY - minY, 0.01));
    var offX = PL + ((W - PL - PR) - scale * (maxX - minX)) / 2, offY = PT + ((H - PT - PB) - scale * (maxY - minY)) / 2;
    function x(p) { return offX + scale * (p.longitude * k - minX); }
    function y(p) { return offY + scale * (maxY - p.latitude); }
    var svg = S.svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    var title = S.svg('title');
    svg.appendChild(title);
    var legs = [], total = 0;
    for (var i = 1; i < pts.length; i++) {
      var d = S.km(pts[i - 1], pts[i]);
      var hours = (new Date(pts[i].at) - new Date(pts[i - 1].at)) / 3600000;
      var trip = fast[pts[i].transactionId];
      total += d;
      legs.push({ from: pts[i - 1], to: pts[i], km: d, hours: hours, fast: !!trip });
      svg.appendChild(S.svg('line', { class: 'trip' + (trip ? ' fast' : ''), x1: x(pts[i - 1]), y1: y(pts[i - 1]), x2: x(pts[i]), y2: y(pts[i]) }));
      var px = Math.hypot(x(pts[i]) - x(pts[i - 1]), y(pts[i]) - y(pts[i - 1]));
      if (trip && px > 70) {
        svg.appendChild(S.svg('text', { x: (x(pts[i - 1]) + x(pts[i])) / 2, y: (y(pts[i - 1]) + y(pts[i])) / 2 - 6, 'text-anchor': 'middle' },
          S.num(d, 0) + ' km'));
      }
    }
    var labelled = [];
    for (var j = pts.length - 1; j >= 0; j--) {
      var p = pts[j], last = j === pts.length - 1;
      svg.appendChild(S.svg('circle', { class: 'place' + (last ? ' here' : ''), cx: x(p), cy: y(p), r: last ? 6 : 4 }));
      var near = labelled.some(function (q) { return Math.abs(q[0] - x(p)) < 60 && Math.abs(q[1] - y(p)) < 14; });
      if (!near) {
        labelled.push([x(p), y(p)]);
        svg.appendChild(S.svg('text', { class: 'place-label', x: x(p) + 9, y: y(p) + 4 }, p.city));
      }
    }
    title.textContent = pts.length + ' places, ' + S.num(total, 0) + ' km in all, latest ' + pts[pts.length - 1].city;
    box.appendChild(svg);
    box.appendChild(el('p', { class: 'hint' }, pts.length + ' card-present sightings (red: the latest), ' +
      S.num(total, 0) + ' km in all; ' + geo.distinctCities + ' cities in the last two hours; ' +
      geo.impossibleTravelCount + ' impossible trips.'));
    if (legs.length) {
      box.appendChild(el('table', null,
        el('caption', { class: 'hint' }, 'Each leg, oldest first'),
        el('thead', null, el('tr', null, ['From', 'To', 'km', 'Minutes', 'km/h'].map(function (h, i) {
          return el('th', { scope: 'col', class: i > 1 ? 'num' : null }, h);
        }))),
        el('tbody', null, legs.map(function (l) {
          var speed = l.hours > 0 ? l.km / l.hours : null;
          return el('tr', { class: l.fast ? 'error' : null },
            el('td', null, l.from.city), el('td', null, l.to.city),
            el('td', { class: 'num' }, S.num(l.km, 0)), el('td', { class: 'num' }, S.num(l.hours * 60, 1)),
            el('td', { class: 'num' }, speed === null ? '–' : S.num(speed, 0) + (l.fast ? ' (impossible)' : '')));
        }))));
    }
  }

  function describeEvent(e) {
    var p = e.payload || {};
    switch (e.type) {
      case 'TransactionRecorded': return 'Transaction recorded: ' + (p.decision || '') + (p.ruleset_version ? ' by policy ' + p.ruleset_version : '');
      case 'AlertRaised': return 'Alert raised' + (p.priority ? ' (' + p.priority + ')' : '');
      case 'AlertAcknowledged': return 'Acknowledged by ' + (p.analyst || '?') + (p.note ? ': ' + p.note : '');
      case 'AlertResolved': return 'Resolved as ' + String(p.verdict || '').replace('_', ' ') + ' by ' + (p.analyst || '?') + (p.note ? ': ' + p.note : '');
      case 'TransactionLabeled': case 'LabelRecorded': return 'Labelled ' + (p.is_fraud ? 'fraud' : 'legitimate') + ' by ' + (p.source || '?');
      default: return e.type;
    }
  }

  function timeline(a) {
    var list = S.clear(document.getElementById('timeline'));
    var items = [];
    var trail = (a.transaction && a.transaction.auditTrail) || [];
    trail.forEach(function (e) {
      var cls = /Alert(Raised)/.test(e.type) ? 'alert' : /Resolved/.test(e.type) ? 'verdict' : /Label/.test(e.type) ? 'label' : '';
      items.push({ at: e.eventTime, cls: cls, text: describeEvent(e), note: 'log position ' + e.position + ', stream ' + e.streamId });
    });
    a.customer.transactions.nodes.forEach(function (t) {
      if (t.id === a.transactionId) return;
      var bits = ['Transaction ', S.money(t.amount, t.currency), t.city ? ' in ' + t.city : '', ': ', t.decision.toLowerCase(),
        ' (score ', S.num(t.riskScore, 2), ', policy ', t.rulesetVersion, ')'];
      if (t.alert) bits.push(', alert ', t.alert.priority, ' ', t.alert.status.toLowerCase(), t.alert.verdict ? ' as ' + t.alert.verdict.toLowerCase().replace('_', ' ') : '');
      if (t.label) bits.push(', labelled ', t.label.isFraud ? 'fraud' : 'legitimate', ' (', t.label.source, ')');
      items.push({ at: t.eventTime, cls: t.alert ? 'alert' : '', text: bits.join(''), link: t.alert ? '/console/alerts/' + t.alert.id : null });
    });
    items.sort(function (x, y) { return new Date(y.at) - new Date(x.at); });
    items.forEach(function (i) {
      list.appendChild(el('li', { class: i.cls },
        el('time', { datetime: i.at }, S.time(i.at)),
        i.link ? el('a', { href: i.link }, i.text) : i.text,
        i.note ? el('span', { class: 'hint' }, ' · ' + i.note) : null));
    });
  }

  // The customer's whole stream from the log (the audit history), a page
  // of 100 at a time, oldest first, on request.
  var HISTORY = 'query History($id: String!, $after: String) { customer(id: $id) {' +
    ' history(first: 100, after: $after) { pageInfo { hasNextPage endCursor }' +
    ' nodes { position streamVersion type eventTime payload } } } }';
  var historyAfter = null;
  function history() {
    var button = document.getElementById('history-more');
    button.disabled = true;
    S.gql(HISTORY, { id: current.customerId, after: historyAfter }).then(function (d) {
      var page = d.customer.history;
      var list = document.getElementById('history');
      page.nodes.forEach(function (e) {
        list.appendChild(el('li', { class: /Alert/.test(e.type) ? 'alert' : '' },
          el('time', { datetime: e.eventTime }, S.time(e.eventTime)),
          describeEvent(e),
          el('span', { class: 'hint' }, ' · version ' + e.streamVersion + ', log position ' + e.position)));
      });
      historyAfter = page.pageInfo.endCursor;
      button.hidden = !page.pageInfo.hasNextPage;
      button.textContent = 'Read 100 more';
      button.disabled = false;
    }).catch(function (e) {
      button.disabled = false;
      document.getElementById('history').appendChild(el('li', { class: 'error' }, 'Could not read the log: ' + e.message));
    });
  }

  function render(a) {
    current = a;
    document.title = a.priority + ' alert for ' + a.customerId + ' · Sentinel';
    S.clear(document.getElementById('case-title')).append(S.prio(a.priority), ' Alert for customer ', a.customerId);
    var summary = S.clear(document.getElementById('case-summary'));
    summary.append('Status: ', S.status(a.status), ' · score ', S.num(a.riskScore, 3), ' · decision ', a.decision.toLowerCase(),
      ' · policy ', a.rulesetVersion, ' · raised ', S.time(a.raisedAt), ' (', S.ago(a.raisedAt), ')',
      a.verdict ? ' · verdict ' + a.verdict.toLowerCase().replace('_', ' ') + ' by ' + a.resolvedBy : '',
      a.acknowledgedBy && !a.verdict ? ' · acknowledged by ' + a.acknowledgedBy : '');
    summary.setAttribute('data-status', a.status);
    why(a);
    var t = a.transaction || {};
    var p = a.customer.profile || {};
    dl(document.getElementById('tx'), [
      ['Transaction', a.transactionId], ['Amount', S.money(a.amount, a.currency)],
      ['Merchant', (a.merchantId || '–') + (t.merchantCategory ? ' (' + t.merchantCategory + ')' : '')],
      ['Type', [t.transactionType, t.paymentMethod, t.deviceType].filter(Boolean).join(' · ')],
      ['Where', t.city ? t.city + ', ' + t.country : null], ['When', S.time(t.eventTime || a.raisedAt)],
      ['Late', t.late ? 'yes' : null],
      ['Label', t.label ? (t.label.isFraud ? 'fraud' : 'legitimate') + ' (' + t.label.source + ')' : 'none yet'],
      ['Customer', a.customerId + (p.riskLevel ? ' · risk ' + p.riskLevel.toLowerCase() : '')],
      ['Usual spend', p.transactionCount ? S.num(p.amountMean) + ' ± ' + S.num(p.amountStdDev) + ' over ' + p.transactionCount + ' transactions' : null],
      ['Home', p.home ? p.home.city + ', ' + p.home.country : null],
    ]);
    places(a);
    timeline(a);
    document.getElementById('acknowledge').disabled = a.status !== 'OPEN';
    document.getElementById('fraud').disabled = a.status === 'RESOLVED';
    document.getElementById('legit').disabled = a.status === 'RESOLVED';
    root.setAttribute('aria-busy', 'false');
    document.body.setAttribute('data-ready', 'true');
  }

  function load() {
    return S.gql(QUERY, { id: alertId }).then(function (d) {
      if (!d.alert) throw new Error('no such alert (it may not be projected yet)');
      render(d.alert);
    }).catch(function (e) {
      var s = document.getElementById('case-summary');
      s.textContent = 'Could not load the alert: ' + e.message;
      s.className = 'hint error';
    });
  }

  // Runs an action, then reloads until the read model shows its effect.
  function run(path, body, expect) {
    var result = document.getElementById('act-result');
    var analyst = document.getElementById('analyst').value.trim();
    if (!analyst) {
      result.className = 'error';
      result.textContent = 'Enter your analyst name first.';
      document.getElementById('analyst').focus();
      return;
    }
    window.localStorage.setItem('sentinel.analyst', analyst);
    var note = document.getElementById('note').value.trim();
    body.analyst = analyst;
    if (note) body.note = note;
    result.className = '';
    result.textContent = 'Sending…';
    S.act(path, body).then(function (r) {
      if (r.status >= 300) {
        result.className = 'error';
        result.textContent = 'Refused (' + r.status + '): ' + (r.body.detail || r.body.title || 'see the log');
        return;
      }
      result.className = 'ok';
      result.textContent = r.status === 201 ? 'Done.' : 'Already so: nothing changed.';
      var tries = 0;
      (function again() {
        load().then(function () {
          if (expect && current && !expect(current) && ++tries < 20) setTimeout(again, 250);
        });
      })();
    }).catch(function (e) {
      result.className = 'error';
      result.textContent = 'Not sent: ' + e.message;
    });
  }

  function label(isFraud) {
    var result = document.getElementById('act-result');
    S.act('/v1/labels', { transaction_id: current.transactionId, is_fraud: isFraud, source: 'analyst' }).then(function (r) {
      result.className = r.status >= 300 ? 'error' : 'ok';
      result.textContent = r.status >= 300
        ? 'Refused (' + r.status + '): ' + (r.body.detail || r.body.title || 'see the log')
        : 'Labelled ' + (isFraud ? 'fraud' : 'legitimate') + '.';
      if (r.status < 300) setTimeout(load, 500);
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    root = document.getElementById('case');
    if (!root) return;
    alertId = root.getAttribute('data-alert');
    document.getElementById('analyst').value = window.localStorage.getItem('sentinel.analyst') || '';
    var base = '/v1/alerts/' + alertId;
    document.getElementById('acknowledge').addEventListener('click', function () {
      run(base + '/acknowledgement', {}, function (a) { return a.status !== 'OPEN'; });
    });
    document.getElementById('fraud').addEventListener('click', function () {
      run(base + '/resolution', { verdict: 'confirmed_fraud' }, function (a) { return a.status === 'RESOLVED'; });
    });
    document.getElementById('legit').addEventListener('click', function () {
      run(base + '/resolution', { verdict: 'false_positive' }, function (a) { return a.status === 'RESOLVED'; });
    });
    document.getElementById('history-more').addEventListener('click', history);
    document.getElementById('label-fraud').addEventListener('click', function () { label(true); });
    document.getElementById('label-legit').addEventListener('click', function () { label(false); });
    document.addEventListener('keydown', function (e) {
      if (e.key === 'Escape' && !document.querySelector('dialog[open]')) window.location.href = '/console/';
    });
    load();
  });
})();
