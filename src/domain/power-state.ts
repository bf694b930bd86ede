// Nova's power states (nova/compute/power_state.py) and the table that maps
// libvirt's virDomainState onto them, as Nova's libvirt driver does in one place.

export const PowerState = {
  NOSTATE: 0,
  RUNNING: 1,
  PAUSED: 3,
  SHUTDOWN: 4,
  CRASHED: 6,
  SUSPENDED: 7,
} as const;
export type PowerState = (typeof PowerState)[keyof typeof PowerState];

const POWER_STATE_NAMES: Record<PowerState, string> = {
  0: 'pending',
  1: 'running',
  3: 'paused',
  4: 'shutdown',
  6: 'crashed',
  7: 'suspended',
};

// virDomainState -> Nova power state (Nova's LIBVIRT_POWER_STATE).
const LIBVIRT_POWER_STATE: Record<number, PowerState> = {
  0: PowerState.NOSTATE, // VIR_DOMAIN_NOSTATE
  1: PowerState.RUNNING, // VIR_DOMAIN_RUNNING
  // Nova treats BLOCKED as RUNNING: the guest is alive, just waiting on I/O.
  2: PowerState.RUNNING, // VIR_DOMAIN_BLOCKED
  3: PowerState.PAUSED, // VIR_DOMAIN_PAUSED
  4: PowerState.SHUTDOWN, // VIR_DOMAIN_SHUTDOWN
  5: PowerState.SHUTDOWN, // VIR_DOMAIN_SHUTOFF
  6: PowerState.CRASHED, // VIR_DOMAIN_CRASHED
  7: PowerState.SUSPENDED, // VIR_DOMAIN_PMSUSPENDED
};

export function powerStateFromLibvirt(virDomainState: number): PowerState {
  return LIBVIRT_POWER_STATE[virDomainState] ?? PowerState.NOSTATE;
}

export function powerStateName(state: PowerState): string {
  return POWER_STATE_NAMES[state];
}
