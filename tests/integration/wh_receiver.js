// wh_receiver.js — a webhook receiver for the integration tests.
//
//   node wh_receiver.js PORT [SECRET]     (PORT 0: any; prints "port N")
//
// POST <any path>            records the request; answers the next status
//                            planned for that path (default 200); a
//                            planned "hang" never answers (timeouts)
// POST /ctl/plan?path=P&codes=500,500,200   plans the answers for path P
// POST /ctl/secret?value=whsec_...          sets the verification secret
// GET  /ctl/log?path=P       [{path, headers, body, status, verified, why}]
//
// Each request is verified with the npm package `standardwebhooks` when it
// can be loaded (NODE_PATH), else `verified` is null and the shell test
// checks the signature itself with openssl.
'use strict';
const http = require('http');
const url = require('url');

let Webhook = null;
try { Webhook = require('standardwebhooks').Webhook; } catch (e) { Webhook = null; }

const port = parseInt(process.argv[2] || '0', 10);
let secret = process.argv[3] || '';
const plans = {};
const log = [];

function verify(body, headers) {
  if (!Webhook || !secret) return { verified: null, why: Webhook ? 'no secret' : 'no library' };
  try {
    new Webhook(secret).verify(body, headers);
    return { verified: true, why: '' };
  } catch (e) {
    return { verified: false, why: String(e.message || e) };
  }
}

const server = http.createServer((req, res) => {
  const u = url.parse(req.url, true);
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    if (u.pathname === '/ctl/plan') {
      plans[u.query.path] = String(u.query.codes || '').split(',').filter((x) => x);
      res.end('ok\n');
      return;
    }
    if (u.pathname === '/ctl/secret') {
      secret = String(u.query.value || '');
      res.end('ok\n');
      return;
    }
    if (u.pathname === '/ctl/log') {
      const out = log.filter((r) => !u.query.path || r.path === u.query.path);
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(out) + '\n');
      return;
    }
    const plan = plans[u.pathname] || [];
    const next = plan.length ? plan.shift() : '200';
    const v = verify(body, req.headers);
    log.push({ path: u.pathname, method: req.method, headers: req.headers, body: body,
               status: next, verified: v.verified, why: v.why, at: Date.now() });
    if (next === 'hang') return;   // never answers: the sender times out
    res.statusCode = parseInt(next, 10);
    res.end('status ' + next + '\n');
  });
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write('port ' + server.address().port + '\n');
});
process.on('SIGTERM', () => process.exit(0));
