// An independent verifier of leaf version 2 (SPEC "Proofs" -> "Leaf version 2")
// that shares no code with Auditlog: SHA-256 from node:crypto, and RFC 8785
// (JCS) as JSON.stringify of values with object keys sorted by UTF-16 code
// units (Array.prototype.sort's default order), which is what RFC 8785
// specifies: strings and numbers serialised by ECMAScript's rules.
//
// Input: a file of served events, one JSON object per line (plain values,
// "v": 2, "openings", "hash"). Output: per line, the lowercase hex leaf hash
// (SHA-256 of 0x00 and the rebuilt leaf), a tab, and the rebuilt leaf.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');

function jcs(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return '[' + value.map(jcs).join(',') + ']';
  const keys = Object.keys(value).sort();
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + jcs(value[k])).join(',') + '}';
}

function commitment(saltBase64, value) {
  const hash = crypto.createHash('sha256');
  hash.update(Buffer.from(saltBase64, 'base64'));
  hash.update(Buffer.from(jcs(value), 'utf8'));
  return { c: hash.digest('base64') };
}

function rebuildLeaf(served) {
  const event = JSON.parse(JSON.stringify(served));
  const openings = event.openings;
  delete event.hash;
  delete event.openings;
  delete event.erased;
  const personal = {};
  if (event.actor !== undefined) {
    for (const member of ['id', 'name', 'email']) {
      if (member in event.actor) personal['actor.' + member] = event.actor[member];
    }
    delete event.actor;
  }
  if (event.context !== undefined) {
    for (const member of ['ip', 'user_agent']) {
      if (member in event.context) {
        personal['context.' + member] = event.context[member];
        delete event.context[member];
      }
    }
    if (Object.keys(event.context).length === 0) delete event.context;
  }
  event.personal = commitment(openings.personal, personal);
  for (const [path, salt] of Object.entries(openings)) {
    if (path === 'personal') continue;
    const names = path.split('.');
    let parent = event;
    for (const name of names.slice(0, -1)) parent = parent[name];
    const last = names[names.length - 1];
    parent[last] = commitment(salt, parent[last]);
  }
  return Buffer.from(jcs(event), 'utf8');
}

const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter((l) => l.length > 0);
for (const line of lines) {
  const leaf = rebuildLeaf(JSON.parse(line));
  const hash = crypto.createHash('sha256');
  hash.update(Buffer.from([0]));
  hash.update(leaf);
  process.stdout.write(hash.digest('hex') + '\t' + leaf.toString('utf8') + '\n');
}
