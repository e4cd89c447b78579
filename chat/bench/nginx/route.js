// For chat/bench/nginx.sh with BENCH_NGINX_FRONT=stream-js (scripts/lib/nginx.sh): nginx's stream
// module routes a connection by its request line, a WebSocket handshake for /ws to the chat as
// plain TCP and everything else to the HTTP server. Not a configuration to deploy.
function preread(s) {
  s.on('upload', function (data, flags) {
    if (data.length === 0 && !flags.last) {
      return;
    }
    if (data.startsWith('GET /ws ') || data.startsWith('GET /ws?')) {
      s.variables.route = 'chat';
    }
    s.off('upload');
    s.done();
  });
}

export default { preread };
