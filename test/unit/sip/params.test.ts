/** Params: the parameter lists of Via, name-addr and URI (RFC 3261 §7.3.1, §19.1.1). */
import t from 'tap';
import { parseGenericParams } from '../../../src/sip/message/grammar.js';
import { EMPTY_PARAMS, Params } from '../../../src/sip/message/params.js';
import { parseUri } from '../../../src/sip/message/uri.js';
import { parseVia } from '../../../src/sip/message/via.js';

t.test('get/has/size distinguish a parameter without a value (null) from an absent one (undefined)', async (t) => {
  const p = parseGenericParams(';branch=z9hG4bK1;rport;Received=10.0.0.1', 0, 'DP_SIP_BAD_VIA', 'Via');
  t.equal(p.size, 3);
  t.equal(p.get('branch'), 'z9hG4bK1');
  t.equal(p.get('rport'), null);
  t.equal(p.get('received'), '10.0.0.1', 'names are lower-cased');
  t.equal(p.get('maddr'), undefined);
  t.ok(p.has('rport'));
  t.notOk(p.has('ttl'));
  t.same([...p], [['branch', 'z9hG4bK1'], ['rport', null], ['received', '10.0.0.1']], 'iteration keeps the written order');
  t.equal(p.toString(), ';branch=z9hG4bK1;rport;received=10.0.0.1');
});

t.test('with() replaces in place or appends; the original is never changed', async (t) => {
  const p = new Params(['branch', 'b1', 'rport', null]);
  const q = p.with('rport', '5070').with('received', '127.0.0.2');
  t.equal(q.toString(), ';branch=b1;rport=5070;received=127.0.0.2');
  t.equal(p.toString(), ';branch=b1;rport');
});

t.test('an element without parameters shares EMPTY_PARAMS; duplicates are refused', async (t) => {
  t.equal(parseUri('sip:4008123456@127.0.0.1:5060').params, EMPTY_PARAMS);
  t.equal(parseVia('SIP/2.0/UDP 127.0.0.1').params, EMPTY_PARAMS);
  t.equal(parseUri('sip:a@b;Transport=UDP;lr').params.get('transport'), 'UDP', 'URI parameter names lower-cased, values as written');
  t.equal(parseUri('sip:a@b;Transport=UDP;lr').toString(), 'sip:a@b;Transport=UDP;lr', 'the URI text is kept as written');
  t.throws(() => parseUri('sip:a@b;lr;LR'), /Duplicate URI parameter lr/);
  t.throws(() => parseUri('sip:a@b;;lr'), /Empty URI parameter/);
  t.throws(() => parseUri('sip:a@b;=x'), /Empty URI parameter name/);
  t.throws(() => parseVia('SIP/2.0/UDP h;branch=z9hG4bKa;Branch=z9hG4bKb'), /Duplicate parameter branch/);
});
