// Policy and models (/console/policy): the live and shadow versions, the
// model each scores with, every version's thresholds and expression rules,
// the difference between two versions (policyDiff), the shadow against
// live over the transactions it decided (shadowComparison), the recorded
// models with the versions that use them (models) and the recorded
// backtests (backtests).
(function () {
  'use strict';
  var S = window.Sentinel, el = S.el;
  var QUERY = 'query Policy { policyStatus { liveVersion shadowVersion modelVersion rollbackTo }' +
    ' policies { version modelVersion publishedBy publishedAt live shadow' +
    '   decisionThresholds { review decline } priorityThresholds { p0 p1 p2 p3 }' +
    '   expressionRules { name enabled } } }';
  var SHADOW = 'query Shadow { shadowComparison { shadowVersion transactions labelled changedDecisions' +
    ' changes { change count } alertsAdded alertsRemoved' +
    ' live { version alerts recall falsePositiveRate precision }' +
    ' shadow { version alerts recall falsePositiveRate precision } } }';
  var MODELS = 'query Models { models { version trainedAt trainedBy catalogueVersion trees' +
    ' training { from to rows fraud } validation { rocAuc averagePrecision atFalsePositiveRate { target recall } }' +
    ' importances(first: 3) { feature } usable unusableReason usedBy { version live shadow } } }';
  var BACKTESTS = 'query Backtests { backtests(first: 20) { recordedAt recordedBy candidateVersion baselineVersion from to flag' +
    ' compared mismatches differing alertsOld alertsNew labelled' +
    ' baseline { recall falsePositiveRate precision alertRate } candidate { recall falsePositiveRate precision alertRate } } }';
  var DIFF = 'query Diff($from: String!, $to: String!) { policyDiff(from: $from, to: $to) { path from to } }';

  function pct(x) { return x === null || x === undefined ? '–' : S.num(100 * x, 1) + ' %'; }

  function render(d) {
    var s = d.policyStatus;
    var facts = S.clear(document.getElementById('status'));
    [['Live version', s.liveVersion || 'none yet'], ['Shadow version', s.shadowVersion || 'none'],
     ['Live model', s.modelVersion || 'none (rules only)'], ['Rollback would make live', s.rollbackTo || '–']]
      .forEach(function (p) { facts.appendChild(el('dt', null, p[0])); facts.appendChild(el('dd', null, p[1])); });
    var body = S.clear(document.querySelector('#versions tbody'));
    d.policies.slice().reverse().forEach(function (v) {
      var state = v.live ? 'live' : v.shadow ? 'shadow' : '';
      body.appendChild(el('tr', null,
        el('td', null, el('code', null, v.version)),
        el('td', { class: v.live ? 'ok' : '' }, state),
        el('td', null, v.modelVersion || '–'),
        el('td', null, S.time(v.publishedAt)),
        el('td', null, v.publishedBy),
        el('td', null, S.num(v.decisionThresholds.review, 2) + ' / ' + S.num(v.decisionThresholds.decline, 2)),
        el('td', null, [v.priorityThresholds.p0, v.priorityThresholds.p1, v.priorityThresholds.p2, v.priorityThresholds.p3]
          .map(function (x) { return S.num(x, 2); }).join(' / ')),
        el('td', null, v.expressionRules.length ? v.expressionRules.map(function (r) { return r.name + (r.enabled ? '' : ' (off)'); }).join(', ') : '–')));
    });
    var from = S.clear(document.getElementById('diff-from')), to = S.clear(document.getElementById('diff-to'));
    d.policies.forEach(function (v, i) {
      from.appendChild(el('option', { value: v.version, selected: i === d.policies.length - 2 }, v.version));
      to.appendChild(el('option', { value: v.version, selected: i === d.policies.length - 1 }, v.version));
    });
    if (d.policies.length >= 2) diff();
    else S.clear(document.getElementById('diff')).appendChild(el('p', { class: 'hint' }, 'One version only: nothing to compare.'));
    document.body.setAttribute('data-ready', 'true');
  }

  function diff() {
    var box = S.clear(document.getElementById('diff'));
    var vars = { from: document.getElementById('diff-from').value, to: document.getElementById('diff-to').value };
    S.gql(DIFF, vars).then(function (d) {
      var changes = d.policyDiff || [];
      if (!changes.length) { box.appendChild(el('p', { class: 'hint' }, 'No difference.')); return; }
      box.appendChild(el('table', { class: 'diff' },
        el('caption', { class: 'hint' }, changes.length + (changes.length === 1 ? ' change' : ' changes') + ' from ' + vars.from + ' to ' + vars.to),
        el('thead', null, el('tr', null, el('th', { scope: 'col' }, 'Path'), el('th', { scope: 'col' }, vars.from), el('th', { scope: 'col' }, vars.to))),
        el('tbody', null, changes.map(function (c) {
          return el('tr', null, el('td', null, el('code', null, c.path)),
            el('td', null, el('code', null, c.from === null ? '(absent)' : c.from)),
            el('td', null, el('code', null, c.to === null ? '(absent)' : c.to)));
        }))));
    }).catch(function (e) { box.appendChild(el('p', { class: 'error' }, e.message)); });
  }

  function shadow() {
    var box = S.clear(document.getElementById('shadow'));
    S.gql(SHADOW, {}).then(function (d) {
      var c = d.shadowComparison;
      if (!c) { box.appendChild(el('p', { class: 'hint' }, 'No shadow version is set.')); return; }
      box.appendChild(el('p', null, c.transactions + ' transactions decided by both (' + c.labelled + ' labelled): ' +
        c.changedDecisions + ' decisions would change; alerts +' + c.alertsAdded + ' / −' + c.alertsRemoved + '.'));
      box.appendChild(el('table', null,
        el('thead', null, el('tr', null, ['', 'Version', 'Alerts', 'Recall', 'False-positive rate', 'Precision'].map(function (h) { return el('th', { scope: 'col' }, h); }))),
        el('tbody', null, [['Live', c.live], ['Shadow', c.shadow]].map(function (p) {
          return el('tr', null, el('th', { scope: 'row' }, p[0]), el('td', null, p[1].version || 'several'),
            el('td', { class: 'num' }, S.num(p[1].alerts, 0)), el('td', { class: 'num' }, pct(p[1].recall)),
            el('td', { class: 'num' }, pct(p[1].falsePositiveRate)), el('td', { class: 'num' }, pct(p[1].precision)));
        }))));
    }).catch(function (e) { box.appendChild(el('p', { class: 'error' }, e.message)); });
  }

  function day(iso) { return iso ? new Date(iso).toISOString().slice(0, 10) : '…'; }
  function head(names) {
    return el('thead', null, el('tr', null, names.map(function (h) { return el('th', { scope: 'col' }, h); })));
  }

  function models() {
    var box = S.clear(document.getElementById('models'));
    return S.gql(MODELS, {}).then(function (d) {
      if (!d.models.length) { box.appendChild(el('p', { class: 'hint' }, 'No model recorded yet (fraudctl model train).')); return; }
      box.appendChild(el('table', { id: 'model-list' },
        head(['Version', 'Trained', 'By', 'Catalogue', 'Training window', 'ROC AUC', 'Avg. precision', 'Recall at 1 % FPR', 'Top features', 'Used by']),
        el('tbody', null, d.models.map(function (m) {
          var at1 = m.validation.atFalsePositiveRate.filter(function (p) { return p.target === 0.01; })[0];
          var used = m.usedBy.map(function (v) { return v.version + (v.live ? ' (live)' : v.shadow ? ' (shadow)' : ''); });
          return el('tr', { 'data-version': m.version },
            el('td', null, el('code', null, m.version), m.usable ? null : el('div', { class: 'error' }, m.unusableReason)),
            el('td', null, S.time(m.trainedAt)), el('td', null, m.trainedBy),
            el('td', { class: 'num' }, String(m.catalogueVersion)),
            el('td', null, day(m.training.from) + ' – ' + day(m.training.to) + ' (' + S.num(m.training.rows, 0) + ' rows, ' + S.num(m.training.fraud, 0) + ' fraud)'),
            el('td', { class: 'num' }, S.num(m.validation.rocAuc, 3)),
            el('td', { class: 'num' }, S.num(m.validation.averagePrecision, 3)),
            el('td', { class: 'num' }, at1 ? pct(at1.recall) : '–'),
            el('td', null, m.importances.map(function (i) { return i.feature; }).join(', ') || '–'),
            el('td', { class: m.usedBy.some(function (v) { return v.live; }) ? 'ok' : '' }, used.length ? used.join(', ') : 'no policy version'));
        }))));
    }).catch(function (e) { box.appendChild(el('p', { class: 'error' }, e.message)); });
  }

  function backtests() {
    var box = S.clear(document.getElementById('backtests'));
    return S.gql(BACKTESTS, {}).then(function (d) {
      if (!d.backtests.length) { box.appendChild(el('p', { class: 'hint' }, 'No backtest recorded yet.')); return; }
      function pair(b, key) {
        return b.baseline && b.candidate ? pct(b.baseline[key]) + ' → ' + pct(b.candidate[key]) : '–';
      }
      box.appendChild(el('table', { id: 'backtest-list' },
        head(['Recorded', 'By', 'Draft', 'Against', 'Window', 'Compared', 'Decided differently', 'Alerts', 'Recall', 'False-positive rate', 'Precision', 'Alert rate']),
        el('tbody', null, d.backtests.map(function (b) {
          return el('tr', { 'data-candidate': b.candidateVersion },
            el('td', null, S.time(b.recordedAt)), el('td', null, b.recordedBy),
            el('td', null, el('code', null, b.candidateVersion)),
            el('td', null, b.baselineVersion ? el('code', null, b.baselineVersion) : 'the deciding versions'),
            el('td', null, b.from || b.to ? (b.from ? day(b.from) : '…') + ' – ' + (b.to ? day(b.to) : '…') : 'all recorded'),
            el('td', { class: 'num' }, S.num(b.compared, 0) + (b.mismatches ? ' (' + S.num(b.mismatches, 0) + ' not reproduced)' : '')),
            el('td', { class: 'num' }, S.num(b.differing, 0)),
            el('td', { class: 'num' }, S.num(b.alertsOld, 0) + ' → ' + S.num(b.alertsNew, 0)),
            el('td', { class: 'num' }, pair(b, 'recall')), el('td', { class: 'num' }, pair(b, 'falsePositiveRate')),
            el('td', { class: 'num' }, pair(b, 'precision')), el('td', { class: 'num' }, pair(b, 'alertRate')));
        }))));
      box.appendChild(el('p', { class: 'hint' }, 'Figures: baseline → draft, over the compared transactions that have a label.'));
    }).catch(function (e) { box.appendChild(el('p', { class: 'error' }, e.message)); });
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.getElementById('diff-form').addEventListener('submit', function (e) { e.preventDefault(); diff(); });
    S.gql(QUERY, {}).then(render).catch(function (e) {
      document.getElementById('status').appendChild(el('dd', { class: 'error' }, 'Could not load: ' + e.message));
    });
    shadow();
    Promise.all([models(), backtests()]).then(function () {
      document.body.setAttribute('data-extras-ready', 'true');
    });
  });
})();
