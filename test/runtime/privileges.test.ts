import test from 'ava';
import { CAP_SYS_RESOURCE, hasEffectiveCapability } from '../../src/runtime/privileges.js';

const status = (capEff: string) => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`;

test("a capability is read off CapEff's bit", (t) => {
  // Every capability but CAP_SYS_RESOURCE (bit 24), as root has it on these machines.
  t.false(hasEffectiveCapability(CAP_SYS_RESOURCE, status('000001fffeffffff')));
  t.true(hasEffectiveCapability(CAP_SYS_RESOURCE, status('000001ffffffffff')));
  t.true(hasEffectiveCapability(0, status('0000000000000001')));
  t.false(hasEffectiveCapability(40, status('000000ffffffffff')));
});

test('a status without CapEff is taken as having it (nothing to warn about)', (t) => {
  t.true(hasEffectiveCapability(CAP_SYS_RESOURCE, 'Name:\tnode\n'));
});
