// The data plane API the agent builds on.
export { NftDataplane, realtimeMs, serviceSets, type BucketSet, type TimedBucket } from './nft-dataplane.js';
export { bindVips, checkIfaceExists, releaseInterface, unbindVips, sysctlPlan } from './vip-binding.js';
export { ArpResponder, type ArpStats } from './arp-responder.js';
export { neighbours, type Neighbour } from './neighbours.js';
export { FrameSocket, BROADCAST_MAC, HEARTBEAT_ETHERTYPE, MAX_FRAME_PAYLOAD, type FrameHandler, type FrameStats } from './frame-socket.js';
export type { RuleCounter, StageCounter, Stage } from './counters.js';
export { DataplaneInputError } from './validate.js';
