// Typed failures of the Neutron adapter. Callers decide on the type, never on
// message text: NeutronUnavailable is transient (retry later), the others are not.

export class NeutronError extends Error {
  override readonly name: string = 'NeutronError';
}

/** Neutron (or Keystone) could not be reached, timed out, or answered 5xx after our retries. */
export class NeutronUnavailable extends NeutronError {
  override readonly name = 'NeutronUnavailable';
  constructor(
    readonly request: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Neutron ${request} unavailable: ${reason}`, options);
  }
}

/** 404: the network, subnet, port or security group does not exist (any more). */
export class NeutronNotFound extends NeutronError {
  override readonly name = 'NeutronNotFound';
  constructor(
    readonly request: string,
    readonly neutronType: string | null,
    detail: string,
  ) {
    super(`Neutron ${request}: not found${neutronType ? ` (${neutronType})` : ''}: ${detail}`);
  }
}

/** Any other 4xx (bad request, conflict, auth refused, precondition failed); not retried. */
export class NeutronRequestFailed extends NeutronError {
  override readonly name = 'NeutronRequestFailed';
  constructor(
    readonly request: string,
    readonly statusCode: number,
    readonly neutronType: string | null,
    detail: string,
  ) {
    super(`Neutron ${request} answered ${statusCode}${neutronType ? ` ${neutronType}` : ''}: ${detail}`);
  }
}

/**
 * The answer failed validation (malformed, hostile or oversized). `field` names the
 * offending field (e.g. `ports[0].mac_address`) so an operator can find it; the value
 * itself never travels further than this error.
 */
export class NeutronResponseInvalid extends NeutronError {
  override readonly name = 'NeutronResponseInvalid';
  constructor(
    readonly request: string,
    readonly field: string,
    readonly problem: string,
  ) {
    super(`Neutron ${request} returned an invalid response: ${field}: ${problem}`);
  }
}
