import test from 'ava';
import { overlayOptions } from '../../src/rootfs/layers.js';

test('overlay options list the layers top first with the writable pair', (t) => {
  t.is(
    overlayOptions({ lowers: ['/s/top/rootfs', '/s/base/rootfs'], upper: '/st/i/3/upper', work: '/st/i/3/work', target: '/st/i/3/rootfs' }),
    'lowerdir=/s/top/rootfs:/s/base/rootfs,upperdir=/st/i/3/upper,workdir=/st/i/3/work',
  );
});
