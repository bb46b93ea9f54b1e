// GraphiQL, started from the binary's own copy (no CDN), pointed at this
// origin's /graphql and /graphql/ws. `#token=<token>` after the address
// adds the bearer token to both (and the console's sign-in token is used
// when there is none in the address).
(function () {
  'use strict';
  document.documentElement.style.height = '100%';
  document.body.style.margin = '0';
  document.body.style.height = '100%';
  document.body.style.overflow = 'hidden';
  var root = document.getElementById('graphiql');
  root.style.height = '100vh';
  var token = new URLSearchParams(window.location.hash.slice(1)).get('token') ||
    window.sessionStorage.getItem('sentinel.token');
  var headers = token ? { Authorization: 'Bearer ' + token } : {};
  var url = new URL('/graphql', window.location.origin);
  var ws = new URL('/graphql/ws', window.location.origin);
  ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({
        url: url.toString(),
        subscriptionUrl: ws.toString(),
        headers: headers,
        wsConnectionParams: headers,
      }),
      defaultEditorToolsVisibility: true,
      defaultQuery: '# Sentinel: see docs/graphql.md for examples; the console is at /console/.\n{\n  dashboard(window: LAST_HOUR) {\n    intake { accepted quarantined alerts }\n    alertsByPriority { priority raised open }\n  }\n}\n',
    })
  );
})();
