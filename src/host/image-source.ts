import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { z } from 'zod';

// The local image service: <images_path>/<image id> holds the qcow2 bytes and
// <image id>.json its Glance-style metadata (disk_format, os_hash_algo/value).

export const imageMetadata = z.object({
  id: z.string(),
  name: z.string(),
  disk_format: z.literal('qcow2'),
  size: z.number().int().nonnegative(),
  os_hash_algo: z.literal('sha256'),
  os_hash_value: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ImageMetadata = z.infer<typeof imageMetadata>;

export class ImageNotFound extends Error {
  override readonly name = 'ImageNotFound';
}
export class ImageChecksumMismatch extends Error {
  override readonly name = 'ImageChecksumMismatch';
}

export class ImageSource {
  constructor(private readonly imagesPath: string) {}

  private file(imageId: string): string {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(imageId))
      throw new ImageNotFound(`image id ${JSON.stringify(imageId)} is invalid`);
    return path.join(this.imagesPath, imageId);
  }

  async show(imageId: string): Promise<ImageMetadata> {
    let raw: string;
    try {
      raw = await readFile(this.file(imageId) + '.json', 'utf8');
    } catch {
      throw new ImageNotFound(`Image ${imageId} could not be found.`);
    }
    const parsed = imageMetadata.safeParse(JSON.parse(raw));
    if (!parsed.success) throw new ImageNotFound(`Image ${imageId} has invalid metadata: ${parsed.error.message}`);
    return parsed.data;
  }

  /** Adds a local qcow2 file as image `imageId` (what an image upload to Glance does). */
  async create(imageId: string, name: string, sourceFile: string): Promise<ImageMetadata> {
    const dest = this.file(imageId);
    await mkdir(this.imagesPath, { recursive: true });
    const hash = createHash('sha256');
    await pipeline(createReadStream(sourceFile), hash);
    const meta: ImageMetadata = {
      id: imageId,
      name,
      disk_format: 'qcow2',
      size: (await stat(sourceFile)).size,
      os_hash_algo: 'sha256',
      os_hash_value: hash.digest('hex'),
    };
    await copyFile(sourceFile, `${dest}.tmp`);
    await rename(`${dest}.tmp`, dest);
    await writeFile(`${dest}.json.tmp`, JSON.stringify(meta, null, 2));
    await rename(`${dest}.json.tmp`, `${dest}.json`);
    return meta;
  }

  /** Copies the image to `dest`, verifying its checksum; `onProgress` gets bytes copied. */
  async download(imageId: string, dest: string, onProgress: (bytes: number) => void): Promise<void> {
    const meta = await this.show(imageId);
    const src = this.file(imageId);
    const size = (await stat(src)).size;
    if (size !== meta.size) throw new ImageChecksumMismatch(`Image ${imageId}: size ${size} != ${meta.size}`);
    const hash = createHash('sha256');
    let copied = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        copied += chunk.length;
        onProgress(copied);
        cb(null, chunk);
      },
    });
    await pipeline(createReadStream(src), meter, createWriteStream(dest, { flags: 'wx', mode: 0o644 }));
    const digest = hash.digest('hex');
    if (digest !== meta.os_hash_value) {
      throw new ImageChecksumMismatch(`Image ${imageId}: sha256 ${digest} != ${meta.os_hash_value}`);
    }
  }
}
