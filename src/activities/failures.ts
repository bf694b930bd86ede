import { ApplicationFailure } from '@temporalio/common';

// Failure types the workflow and operators see. Permanent ones are
// non-retryable: retrying a rejected XML or a missing image cannot help.
export const FailureType = {
  InstanceInvalidState: 'InstanceInvalidState',
  InstanceNotFound: 'InstanceNotFound',
  ImageNotFound: 'ImageNotFound',
  ImageChecksumMismatch: 'ImageChecksumMismatch',
  DomainXmlRejected: 'DomainXmlRejected',
  InvalidNetworkInfo: 'InvalidNetworkInfo',
  VirtualInterfaceCreateException: 'VirtualInterfaceCreateException',
  VirtualInterfacePlugTimeout: 'VirtualInterfacePlugTimeout',
  ComputeHostUnavailable: 'ComputeHostUnavailable',
} as const;

export function permanent(type: keyof typeof FailureType, message: string, cause?: Error): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true, cause });
}
