/* PersonaGraph tracking pixel, for the organization's own websites:

     <script src="https://PERSONAGRAPH_HOST/px.js" data-org="ORG_SLUG" async></script>

   Campaign links carry a signed persona token as ?pg=<token>. The script keeps
   it in a first-party cookie (so later pages are attributed too), removes it
   from the address bar (so a shared URL does not carry it), and reports a
   page_view, plus whatever the page names with window.personagraph.track(name).
   Without a token it sends nothing. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) return;
  var src = new URL(script.src, window.location.href);
  var org = script.getAttribute("data-org") || src.searchParams.get("org");
  if (!org) return;
  var endpoint = src.origin + "/px/" + encodeURIComponent(org);
  var COOKIE = "_pg";
  var YEAR = 365 * 24 * 60 * 60;

  function readCookie() {
    var found = document.cookie.match(new RegExp("(?:^|;\\s*)" + COOKIE + "=([^;]*)"));
    return found ? decodeURIComponent(found[1]) : null;
  }

  function pageUrl() {
    var url = new URL(window.location.href);
    url.searchParams.delete("pg");
    return url.toString();
  }

  var token = new URL(window.location.href).searchParams.get("pg");
  if (token) {
    document.cookie = COOKIE + "=" + encodeURIComponent(token) + "; Max-Age=" + YEAR + "; Path=/; SameSite=Lax" +
      (window.location.protocol === "https:" ? "; Secure" : "");
    if (window.history && window.history.replaceState) {
      window.history.replaceState(window.history.state, "", pageUrl());
    }
  } else {
    token = readCookie();
  }

  function send(name) {
    if (!token) return;
    var body = JSON.stringify({
      token: token,
      event: String(name).slice(0, 200),
      url: pageUrl().slice(0, 2000),
      site: window.location.hostname
    });
    try {
      // text/plain keeps it a simple CORS request: no preflight round trip.
      window.fetch(endpoint, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        keepalive: true,
        headers: { "Content-Type": "text/plain" },
        body: body
      }).catch(function () {});
    } catch (e) { /* tracking never breaks the page */ }
  }

  var api = window.personagraph = window.personagraph || {};
  var queued = Array.isArray(api.q) ? api.q : [];
  api.track = function (name) { if (name) send(name); };
  send("page_view");
  for (var i = 0; i < queued.length; i++) api.track(queued[i]);
  api.q = [];
})();
