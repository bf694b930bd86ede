// libvirt error codes the driver decides on (virterror.h). Decisions compare
// codes, never message text.
export const VIR_ERR_INTERNAL_ERROR = 1;
export const VIR_ERR_INVALID_ARG = 8;
export const VIR_ERR_XML_ERROR = 27;
export const VIR_ERR_XML_DETAIL = 35;
export const VIR_ERR_SYSTEM_ERROR = 38;
export const VIR_ERR_RPC = 39;
export const VIR_ERR_NO_DOMAIN = 42;
export const VIR_ERR_OPERATION_INVALID = 55;
export const VIR_ERR_CONFIG_UNSUPPORTED = 67;

export interface LibvirtErrorLike {
  code: number;
  domain: number;
  message: string;
}

export function isLibvirtError(err: unknown): err is LibvirtErrorLike {
  return (
    err instanceof Error &&
    typeof (err as Partial<LibvirtErrorLike>).code === 'number' &&
    typeof (err as Partial<LibvirtErrorLike>).domain === 'number'
  );
}

export function hasCode(err: unknown, code: number): boolean {
  return isLibvirtError(err) && err.code === code;
}

/** Errors that mean "this definition will never work": retrying cannot help. */
export function isConfigRejected(err: unknown): boolean {
  return (
    isLibvirtError(err) &&
    [VIR_ERR_XML_ERROR, VIR_ERR_XML_DETAIL, VIR_ERR_CONFIG_UNSUPPORTED, VIR_ERR_INVALID_ARG].includes(err.code)
  );
}
