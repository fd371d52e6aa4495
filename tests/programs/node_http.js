#!/usr/bin/env node
// node_http: a node http server and a keep-alive client (libuv, epoll_pwait,
// writev, SHUT_WR; sockets closed with syscall(SYS_close)).
//
//   node node_http.js server HOST PORT --body FILE --requests N [--close-idle yes]
//   node node_http.js client HOST PORT --path /P --gets N --post FILE... --out PREFIX
//                     [--deadline SECS]
//
// server: http.createServer.  GET (any path) answers with FILE's bytes;
//   POST echoes the request body.  Once N responses are written it stops
//   listening and exits 0 when its connections have closed: by default it
//   waits for the client to close them; with --close-idle yes it closes them
//   itself at once (server.close(), which in node 20 also closes idle
//   keep-alive connections), right after the last response was written.
//   Lines on stdout:
//     "listening HOST:PORT"
//     "sock S: open peer HOST:PORT"                        (S from 1)
//     "req R: sock S GET /path sent=N"
//     "req R: sock S POST /path recv=N sha256=H"
//     "sock S: end"                          (the peer's clean end of stream)
//     "sock S: error CODE"                   (e.g. ECONNRESET)
//     "sock S: close"
//     "server: done requests=N sockets=S"
//   Exit 2 if the connections do not all close within 10 s of the last
//   response.
// client: http.Agent({keepAlive: true, maxSockets: 3}).  Phase 1: N GETs of
//   /P at once (bodies into PREFIX.get.K).  Phase 2: one POST per --post
//   FILE, all at once (responses into PREFIX.post.K).  Then agent.destroy().
//   Lines on stdout:
//     "get K: OK status=200 len=N sha256=H local PORT"
//     "post K: OK status=200 len=N sha256=H local PORT"
//     "get K: ERROR CODE" / "post K: ERROR CODE"
//     "client: sockets=S"                       (distinct local ports used)
//   Exit 0 when every request is OK, 1 otherwise, 2 on the deadline.
'use strict';
const http = require('http');
const fs = require('fs');
const crypto = require('crypto');

function say(s) { process.stdout.write(s + '\n'); }
function sha(b) { return crypto.createHash('sha256').update(b).digest('hex'); }

function args(argv) {
  const a = { role: argv[0], host: argv[1], port: +argv[2], post: [] };
  for (let i = 3; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, ''), v = argv[i + 1];
    if (k === 'post') a.post.push(v); else a[k] = v;
  }
  return a;
}

function server(a) {
  const body = fs.readFileSync(a.body);
  const want = +a.requests;
  let nreq = 0, ndone = 0, nsock = 0, open = 0, closing = false;
  let watchdog = null;
  const maybeClose = () => {
    if (ndone >= want && !watchdog) {
      watchdog = setTimeout(() => {
        say('server: connections still open after 10 s: ' + open);
        process.exit(2);
      }, 10000);
      watchdog.unref();
    }
    if (closing || ndone < want || (open > 0 && a['close-idle'] !== 'yes')) return;
    closing = true;
    srv.close();
  };
  const srv = http.createServer({ keepAliveTimeout: 30000 }, (req, res) => {
    const r = ++nreq, s = req.socket._sockseal_id;
    const finish = () => {
      ndone++;
      maybeClose();
    };
    if (req.method === 'POST') {
      const parts = [];
      req.on('data', (d) => parts.push(d));
      req.on('end', () => {
        const b = Buffer.concat(parts);
        say(`req ${r}: sock ${s} POST ${req.url} recv=${b.length} sha256=${sha(b)}`);
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(b, finish);
      });
    } else {
      res.writeHead(200, { 'content-type': 'application/octet-stream',
                           'content-length': body.length });
      res.end(body, () => {
        say(`req ${r}: sock ${s} GET ${req.url} sent=${body.length}`);
        finish();
      });
    }
  });
  srv.on('connection', (sock) => {
    const s = sock._sockseal_id = ++nsock;
    open++;
    say(`sock ${s}: open peer ${sock.remoteAddress}:${sock.remotePort}`);
    sock.on('end', () => say(`sock ${s}: end`));
    sock.on('error', (e) => say(`sock ${s}: error ${e.code || e.message}`));
    sock.on('close', () => {
      open--;
      say(`sock ${s}: close`);
      maybeClose();
    });
  });
  srv.on('clientError', (e, sock) => {
    say(`sock ${sock._sockseal_id}: clientError ${e.code || e.message}`);
    sock.destroy();
  });
  srv.on('close', () => say(`server: done requests=${nreq} sockets=${nsock}`));
  srv.listen(a.port, a.host, () => {
    const ad = srv.address();
    say(`listening ${ad.address}:${ad.port}`);
  });
}

function client(a) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 3 });
  const ports = new Set();
  let bad = 0;
  const pending = new Set();
  const deadline = setTimeout(() => {
    say('deadline: still pending: ' + [...pending].join(' '));
    process.exit(2);
  }, 1000 * (+a.deadline || 40));

  function request(name, opts, payload, outfile) {
    pending.add(name);
    return new Promise((resolve) => {
      const req = http.request({ host: a.host, port: a.port, agent, ...opts }, (res) => {
        const parts = [];
        const port = res.socket.localPort;
        res.on('data', (d) => parts.push(d));
        res.on('end', () => {
          const b = Buffer.concat(parts);
          fs.writeFileSync(outfile, b);
          ports.add(port);
          say(`${name}: OK status=${res.statusCode} len=${b.length} sha256=${sha(b)} local ${port}`);
          if (res.statusCode !== 200) bad++;
          pending.delete(name);
          resolve();
        });
        res.on('error', (e) => {
          say(`${name}: ERROR ${e.code || e.message}`);
          bad++;
          pending.delete(name);
          resolve();
        });
      });
      req.on('error', (e) => {
        say(`${name}: ERROR ${e.code || e.message}`);
        bad++;
        pending.delete(name);
        resolve();
      });
      req.end(payload);
    });
  }

  (async () => {
    const gets = [];
    for (let k = 1; k <= +a.gets; k++)
      gets.push(request(`get ${k}`, { method: 'GET', path: a.path }, undefined,
                        `${a.out}.get.${k}`));
    await Promise.all(gets);
    const posts = a.post.map((f, i) => {
      const b = fs.readFileSync(f);
      return request(`post ${i + 1}`, { method: 'POST', path: a.path,
                                        headers: { 'content-length': b.length } },
                     b, `${a.out}.post.${i + 1}`);
    });
    await Promise.all(posts);
    say(`client: sockets=${ports.size}`);
    agent.destroy();
    clearTimeout(deadline);
    process.exitCode = bad ? 1 : 0;
  })();
}

const a = args(process.argv.slice(2));
if (a.role === 'server') server(a); else client(a);
