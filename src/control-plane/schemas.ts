import { z } from 'zod';

// Request bodies of the Nova-compatible API, validated at the boundary.

export const uuid = z.uuid();

const name = z
  .string()
  .min(1)
  .max(255)
  // Nova refuses leading/trailing whitespace and control characters in names.
  .regex(/^\S(.*\S)?$/u, 'must not start or end with whitespace')
  .refine((s) => !/\p{Cc}/u.test(s), 'must not contain control characters')
  // libvirt's XML parser refuses lone surrogates and the noncharacters U+FFFE/U+FFFF.
  .refine((s) => s.isWellFormed() && !/[\uFFFE\uFFFF]/.test(s), 'must be valid unicode text');

export const registerServerBody = z
  .object({
    server: z
      .object({
        id: uuid.optional(),
        name,
        flavor: z
          .object({
            vcpus: z.number().int().min(1).max(4096),
            ram: z
              .number()
              .int()
              .min(16)
              .max(4 * 1024 * 1024),
            disk: z.number().int().min(0).max(65536),
          })
          .strict(),
        imageRef: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be an image id (letters, digits and -)'),
        networks: z
          .array(z.object({ port: uuid }).strict())
          .max(16)
          .default([]),
        'OS-EXT-SRV-ATTR:host': z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be a host name')
          .optional(),
      })
      .strict(),
  })
  .strict();
export type RegisterServerBody = z.infer<typeof registerServerBody>;

export const serverActionBody = z.union([
  z.object({ 'os-start': z.null() }).strict(),
  z.object({ 'os-stop': z.null() }).strict(),
]);

/** The first problem, naming the field, for a Nova-style badRequest body. */
export function describeZodError(err: z.ZodError): string {
  const issue = err.issues[0];
  if (!issue) return 'Invalid input';
  const where = issue.path.length ? issue.path.join('.') : 'body';
  return `Invalid input for field/attribute ${where}: ${issue.message}`;
}

// Nova's os-server-external-events request schema (v2.1 names used on this path).
export const externalEventsBody = z
  .object({
    events: z
      .array(
        z
          .object({
            name: z.enum(['network-changed', 'network-vif-plugged', 'network-vif-unplugged', 'network-vif-deleted']),
            server_uuid: uuid,
            status: z.enum(['completed', 'failed', 'in-progress']).default('completed'),
            tag: z.string().max(255).optional(),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();
export type ExternalEvent = z.infer<typeof externalEventsBody>['events'][number];
