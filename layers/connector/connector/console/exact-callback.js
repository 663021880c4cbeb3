// Exact Online redirects here (the OAuth2 redirect_uri) with ?code=…&state=… or ?error=…: hand them to
// the console window that opened this one (same origin only), then close. The code leaves the address bar.
const params = new URLSearchParams(window.location.search);
const message = {
  type: 'exact-authorization',
  code: params.get('code'),
  state: params.get('state'),
  error: params.get('error'),
};
window.history.replaceState(null, '', window.location.pathname);
const text = document.getElementById('message');
if (window.opener && !window.opener.closed) {
  window.opener.postMessage(message, window.location.origin);
  text.textContent = 'Authorization handed to the console; this window closes itself.';
  window.close();
} else {
  text.textContent = 'The console window that asked for this authorization is gone: start again from the console.';
}
