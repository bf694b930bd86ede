import { randomUUID } from 'node:crypto';
import { link, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { heartbeat } from '@temporalio/activity';
import { buildDomainXml, type VirtType } from '../domain/domain-xml.js';
import { baseImagePath, domainXmlPath, instanceDir, instanceDiskPath } from '../domain/image-cache.js';
import type { InstanceSpec } from '../domain/instance.js';
import type { NetworkInfo } from '../domain/network-model.js';
import { ImageChecksumMismatch, ImageNotFound, type ImageSource } from '../host/image-source.js';
import * as qemuImg from '../host/qemu-img.js';
import { permanent } from './failures.js';

export interface DiskDeps {
  instancesPath: string;
  virtType: VirtType;
  images: ImageSource;
}

const GiB = 1024 ** 3;

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Writes through a temp file in the same directory and renames: readers see old or new, never half. */
async function writeAtomically(file: string, data: string): Promise<void> {
  const tmp = `${file}.${randomUUID()}.tmp`;
  try {
    await writeFile(tmp, data, { mode: 0o644 });
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}

export function createDiskActivities({ instancesPath, virtType, images }: DiskDeps) {
  return {
    async writeDomainXml(input: { instance: InstanceSpec; networkInfo: NetworkInfo }): Promise<string> {
      const { uuid } = input.instance;
      await mkdir(instanceDir(instancesPath, uuid), { recursive: true });
      const xml = buildDomainXml({
        instance: input.instance,
        virtType,
        diskPath: instanceDiskPath(instancesPath, uuid),
        consoleLogPath: path.join(instanceDir(instancesPath, uuid), 'console.log'),
        networkInfo: input.networkInfo,
      });
      const file = domainXmlPath(instancesPath, uuid);
      await writeAtomically(file, xml);
      return file;
    },

    /**
     * _create_images_and_backing: the base image is fetched into the cache once
     * (checksum verified) and the instance disk is a qcow2 overlay on it. An
     * existing disk is user data: it is never recreated or overwritten.
     */
    async createBacking(input: { instanceUuid: string; imageRef: string; diskGb: number }): Promise<{
      disk: string;
      base: string;
    }> {
      const base = baseImagePath(instancesPath, input.imageRef);
      const disk = instanceDiskPath(instancesPath, input.instanceUuid);
      await mkdir(path.dirname(base), { recursive: true });
      await mkdir(path.dirname(disk), { recursive: true });
      if (!(await exists(base))) await fetchBase(images, input.imageRef, base);
      if (!(await exists(disk))) {
        const tmp = `${disk}.${randomUUID()}.tmp`;
        try {
          const baseSize = (await qemuImg.info(base))['virtual-size'];
          const size = Math.max(input.diskGb * GiB, baseSize);
          await qemuImg.createOverlay(tmp, base, size);
          // link, not rename: rename would replace a disk another attempt made meanwhile.
          await link(tmp, disk).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'EEXIST') throw err;
          });
        } finally {
          await rm(tmp, { force: true });
        }
      }
      return { disk, base };
    },
  };
}

async function fetchBase(images: ImageSource, imageRef: string, base: string): Promise<void> {
  const tmp = `${base}.${randomUUID()}.tmp`;
  try {
    await images.download(imageRef, tmp, (bytes) => heartbeat({ bytes }));
    await rename(tmp, base);
  } catch (err) {
    if (err instanceof ImageNotFound) throw permanent('ImageNotFound', err.message, err);
    if (err instanceof ImageChecksumMismatch) throw permanent('ImageChecksumMismatch', err.message, err);
    throw err;
  } finally {
    await rm(tmp, { force: true });
  }
}
