import { z } from 'zod';
import { run } from './exec.js';

const imageInfo = z.object({
  format: z.string(),
  'virtual-size': z.number(),
  'backing-filename': z.string().optional(),
  'full-backing-filename': z.string().optional(),
});
export type ImageInfo = z.infer<typeof imageInfo>;

export async function info(file: string): Promise<ImageInfo> {
  // -U: read even while a running QEMU holds the image lock.
  const { stdout } = await run('qemu-img', ['info', '-U', '--output=json', file]);
  return imageInfo.parse(JSON.parse(stdout));
}

/** A qcow2 overlay on a read-only base; `-F` is required by current qemu-img. */
export async function createOverlay(disk: string, backing: string, sizeBytes: number | null): Promise<void> {
  const args = ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', 'qcow2', disk];
  if (sizeBytes !== null) args.push(String(sizeBytes));
  await run('qemu-img', args);
}
