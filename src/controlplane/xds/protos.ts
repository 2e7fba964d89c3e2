// The xDS protos now live in src/xds/, shared by the control plane and the data plane; this re-export keeps
// older import paths working.

export * from '../../xds/protos.js';
