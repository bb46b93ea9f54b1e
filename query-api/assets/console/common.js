// What every console page shares (window.Sentinel): the sign-in token
// (sessionStorage: once per browser session), GraphQL over POST /graphql,
// a graphql-transport-ws client for /graphql/ws, the actions forwarded to
// the command service, safe DOM building (text only, never innerHTML of
// data), formatting, and small SVG charts. Plain script, no build step.
(function () {
  'use strict';
  var TOKEN_KEY = 'sentinel.token';
  var SVG_NS = 'http://www.w3.org/2000/svg';

  function token() { return window.sessionStorage.getItem(TOKEN_KEY) || ''; }
  function authHeaders() {
    var t = token();
    return t ? { Authorization: 'Bearer ' + t } : {};
  }

  // Builds an element: el('td', {class: 'num'}, 'text', child, ...).
  function el(tag, attrs) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, Array.prototype.slice.call(arguments, 2));
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, Array.prototype.slice.call(arguments, 2));
    return node;
  }
  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k.slice(0, 2) === 'on' && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    });
  }
  function append(node, children) {
    children.forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      if (Array.isArray(c)) append(node, c);
      else node.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    });
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  // GraphQL over HTTP. Rejects with an Error whose `code` is the first
  // error's extensions.code; a 401 asks for a token.
  function gql(query, variables) {
    var headers = Object.assign({ 'Content-Type': 'application/json' }, authHeaders());
    return fetch('/graphql', {
      method: 'POST', headers: headers,
      body: JSON.stringify({ query: query, variables: variables || {} }),
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (r.status === 401 || r.status === 403) askToken(r.status === 403
          ? 'This token may not read: it needs the analyst role.'
          : 'Sign in: this Sentinel needs a bearer token.');
        if (body.errors && body.errors.length) {
          var e = new Error(body.errors.map(function (x) { return x.message; }).join('; '));
          e.code = body.errors[0].extensions && body.errors[0].extensions.code;
          e.data = body.data;
          throw e;
        }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return body.data;
      });
    });
  }

  // An action (POST to a forwarded command route). Resolves to
  // {status, body}; a problem's `detail`/`title` explains a refusal.
  function act(path, body) {
    var headers = Object.assign({ 'Content-Type': 'application/json' }, authHeaders());
    return fetch(path, { method: 'POST', headers: headers, body: JSON.stringify(body) })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (b) {
          if (r.status === 401) askToken('Sign in: actions need an analyst token.');
          return { status: r.status, body: b };
        });
      });
  }

  // graphql-transport-ws: one connection, reconnecting with back-off.
  // onData(payload.data) for each `next`; the #live badge shows the state.
  function subscribe(query, variables, onData) {
    var wait = 500, socket = null, stopped = false;
    function badge(on, text) {
      var live = document.getElementById('live');
      if (!live) return;
      live.className = 'live ' + (on ? 'on' : 'off');
      live.textContent = text;
    }
    function connect() {
      var url = new URL('/graphql/ws', window.location.href);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      socket = new WebSocket(url.toString(), 'graphql-transport-ws');
      socket.onopen = function () {
        socket.send(JSON.stringify({ type: 'connection_init', payload: authHeaders() }));
      };
      socket.onmessage = function (m) {
        var msg;
        try { msg = JSON.parse(m.data); } catch (e) { return; }
        if (msg.type === 'connection_ack') {
          wait = 500;
          badge(true, 'Live');
          socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: query, variables: variables || {} } }));
        } else if (msg.type === 'next' && msg.payload && msg.payload.data) {
          onData(msg.payload.data);
        } else if (msg.type === 'ping') {
          socket.send(JSON.stringify({ type: 'pong' }));
        } else if (msg.type === 'error') {
          badge(false, 'Live updates refused');
        }
      };
      socket.onclose = function (ev) {
        if (stopped) return;
        badge(false, ev.code === 4403 || ev.code === 4401 ? 'Not signed in' : 'Reconnecting…');
        setTimeout(connect, wait);
        wait = Math.min(wait * 2, 10000);
      };
    }
    connect();
    return { close: function () { stopped = true; if (socket) socket.close(); } };
  }

  // Sign-in: the dialog in every page's header.
  var askedBecause = null;
  function askToken(reason) {
    var dialog = document.getElementById('token-dialog');
    if (!dialog || dialog.open) return;
    askedBecause = reason || null;
    document.getElementById('token-error').textContent = askedBecause || '';
    document.getElementById('token-input').value = token();
    dialog.showModal();
  }
  function setupSignIn() {
    var button = document.getElementById('sign-in');
    var dialog = document.getElementById('token-dialog');
    if (!button || !dialog) return;
    function label() { button.textContent = token() ? 'Signed in (change)' : 'Sign in'; }
    label();
    button.addEventListener('click', function () { askToken(null); });
    dialog.addEventListener('close', function () {
      var value = dialog.returnValue;
      if (value === 'save') {
        var t = document.getElementById('token-input').value.trim();
        if (t) window.sessionStorage.setItem(TOKEN_KEY, t);
      } else if (value === 'clear') {
        window.sessionStorage.removeItem(TOKEN_KEY);
      }
      label();
      if (value === 'save' || value === 'clear') window.location.reload();
    });
  }

  // Formatting.
  function time(iso) {
    if (!iso) return '';
    var d = new Date(iso);
    return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }
  function ago(iso) {
    var s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }
  function num(x, digits) {
    if (x === null || x === undefined) return '–';
    return Number(x).toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 2 : digits });
  }
  function money(amount, currency) {
    if (amount === null || amount === undefined) return '–';
    return num(amount, 2) + (currency ? ' ' + currency : '');
  }
  var COMPARISONS = { greater_than: '>', at_least: '≥', at_most: '≤', holds: 'holds' };
  // "velocity_count 7 > 5"
  function ruleText(hit) {
    if (hit.comparison === 'holds') return [el('b', null, hit.rule), ' holds'];
    return [el('b', null, hit.rule), ' ', num(hit.observed), ' ', COMPARISONS[hit.comparison] || hit.comparison, ' ', num(hit.threshold)];
  }
  function prio(p) { return el('span', { class: 'prio ' + p }, p); }
  function status(s) { return el('span', { class: 'status ' + s }, s.charAt(0) + s.slice(1).toLowerCase()); }

  // A line chart of series [{values: [..], label, cls}] over x labels;
  // an accessible <svg role="img"> with a title summarising the last values.
  function lineChart(series, xLabels, title) {
    var W = 560, H = 180, L = 44, B = 22, T = 8, R = 8;
    var max = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v > max) max = v; }); });
    if (max <= 0) max = 1;
    var n = Math.max.apply(null, series.map(function (s) { return s.values.length; }).concat([2]));
    function x(i) { return L + (W - L - R) * (n === 1 ? 0 : i / (n - 1)); }
    function y(v) { return T + (H - T - B) * (1 - v / max); }
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': title });
    root.appendChild(svg('title', null, title));
    root.appendChild(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }));
    root.appendChild(svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
    root.appendChild(svg('text', { x: L - 4, y: T + 10, 'text-anchor': 'end' }, num(max, 1)));
    root.appendChild(svg('text', { x: L - 4, y: H - B, 'text-anchor': 'end' }, '0'));
    if (xLabels && xLabels.length) {
      root.appendChild(svg('text', { x: L, y: H - 6 }, xLabels[0]));
      root.appendChild(svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, xLabels[xLabels.length - 1]));
    }
    series.forEach(function (s) {
      var pts = s.values.map(function (v, i) { return x(i).toFixed(1) + ',' + y(v).toFixed(1); }).join(' ');
      root.appendChild(svg('polyline', { class: 'line ' + (s.cls || ''), points: pts }));
      // The latest value as a dot, so that one sample shows too.
      if (s.values.length) {
        var last = s.values.length - 1;
        root.appendChild(svg('circle', { class: 'dot ' + (s.cls || ''), cx: x(last), cy: y(s.values[last]), r: 3 }));
      }
    });
    return root;
  }

  // Horizontal bars: rows [{label, value, cls}].
  function barChart(rows, title) {
    var longest = Math.max.apply(null, rows.map(function (r) { return String(r.label).length; }).concat([4]));
    var W = 560, rowH = 24, L = Math.min(300, 16 + longest * 6.6), R = 60;
    var H = Math.max(rows.length, 1) * rowH + 4;
    var max = Math.max.apply(null, rows.map(function (r) { return r.value; }).concat([1]));
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': title });
    root.appendChild(svg('title', null, title));
    rows.forEach(function (r, i) {
      var y = i * rowH + 4;
      root.appendChild(svg('text', { x: L - 6, y: y + 14, 'text-anchor': 'end' }, r.label));
      root.appendChild(svg('rect', { class: 'bar', x: L, y: y, height: rowH - 8, width: Math.max(1, (W - L - R) * r.value / max) }));
      root.appendChild(svg('text', { x: L + (W - L - R) * r.value / max + 6, y: y + 14 }, num(r.value, 0)));
    });
    return root;
  }

  // Great-circle distance in km.
  function km(a, b) {
    var rad = Math.PI / 180;
    var dLat = (b.latitude - a.latitude) * rad, dLon = (b.longitude - a.longitude) * rad;
    var h = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(a.latitude * rad) * Math.cos(b.latitude * rad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function announce(text) {
    var live = document.getElementById('announce');
    if (!live) {
      live = el('div', { id: 'announce', class: 'skip', 'aria-live': 'polite', role: 'status' });
      document.body.appendChild(live);
    }
    live.textContent = text;
  }

  document.addEventListener('DOMContentLoaded', setupSignIn);

  window.Sentinel = {
    gql: gql, act: act, subscribe: subscribe, token: token, askToken: askToken,
    el: el, svg: svg, clear: clear, time: time, ago: ago, num: num, money: money,
    ruleText: ruleText, prio: prio, status: status, lineChart: lineChart,
    barChart: barChart, km: km, announce: announce,
  };
})();
