// The instance as the power-on path sees it: what Nova's Instance object carries
// that the libvirt driver needs, and nothing the compute host must not know.

export interface Flavor {
  vcpus: number;
  /** MiB, as Nova's flavor.memory_mb */
  ramMb: number;
  /** GiB, as Nova's flavor.root_gb */
  diskGb: number;
}

export interface InstanceSpec {
  uuid: string;
  name: string;
  host: string;
  flavor: Flavor;
  imageRef: string;
  /** Neutron port ids bound to this instance, in attach order. */
  ports: string[];
}
