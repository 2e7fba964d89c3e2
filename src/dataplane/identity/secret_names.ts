// The SDS names of the workload identity, apart from its CA client: a proxy without one names them too.

/** The workload's certificate chain and key, as Istio's. */
export const WORKLOAD_CERT_SECRET = 'default';
/** The trust bundle, as Istio's. */
export const ROOT_CA_SECRET = 'ROOTCA';
export const WORKLOAD_SECRET_NAMES = [WORKLOAD_CERT_SECRET, ROOT_CA_SECRET] as const;
