import { createHash } from 'node:crypto';
import path from 'node:path';

// Nova's image cache names a base file by the SHA-1 of the image id, so any
// number of instances share one read-only base under <instances_path>/_base.
export function imageCacheName(imageId: string): string {
  return createHash('sha1').update(imageId, 'utf8').digest('hex');
}

export function baseImagePath(instancesPath: string, imageId: string): string {
  return path.join(instancesPath, '_base', imageCacheName(imageId));
}

export function instanceDir(instancesPath: string, instanceUuid: string): string {
  const dir = path.resolve(instancesPath, instanceUuid);
  // Defence in depth: uuids are validated at the boundary, but a path that
  // escapes instances_path must never reach the file system.
  if (path.dirname(dir) !== path.resolve(instancesPath)) {
    throw new Error(`instance uuid ${JSON.stringify(instanceUuid)} escapes instances_path`);
  }
  return dir;
}

export function instanceDiskPath(instancesPath: string, instanceUuid: string): string {
  return path.join(instanceDir(instancesPath, instanceUuid), 'disk');
}

export function domainXmlPath(instancesPath: string, instanceUuid: string): string {
  return path.join(instanceDir(instancesPath, instanceUuid), 'libvirt.xml');
}
