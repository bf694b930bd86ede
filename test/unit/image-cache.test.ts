import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { baseImagePath, domainXmlPath, instanceDiskPath, instanceDir } from '../../src/domain/image-cache.js';

test('the base image is named by the sha1 of the image id, under _base', () => {
  const sha1 = createHash('sha1').update('cirros-0.6').digest('hex');
  assert.equal(baseImagePath('/srv/instances', 'cirros-0.6'), `/srv/instances/_base/${sha1}`);
});

test('instance files live in <instances_path>/<uuid>', () => {
  const u = '2f6c1c1e-8b1a-4b8e-9d6e-3d2f0c1b2a10';
  assert.equal(instanceDiskPath('/srv/instances', u), `/srv/instances/${u}/disk`);
  assert.equal(domainXmlPath('/srv/instances/', u), `/srv/instances/${u}/libvirt.xml`);
});

test('an id that would escape instances_path is refused', () => {
  for (const bad of ['../etc', '..', 'a/b', '/abs', '']) {
    assert.throws(() => instanceDir('/srv/instances', bad), /escapes instances_path/, bad);
  }
});
