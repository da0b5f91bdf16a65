/**
 * Which party is on which channel: the known sources' layouts (profiles),
 * the rule that decides the order for one request, and the routing of input
 * channels to the output. Pure: no I/O, table-tested.
 *
 * The model. What a client sends has two "positions": channel 1 and 2 of a
 * stereo file, or the `attachment` and `remoteAttachment` parts of a
 * two-leg upload. The channel order says which position holds the local
 * party: `local-left` (position 1, the default) or `local-right`
 * (position 2). The output is always Imagicle's convention: local party on
 * the left, remote party on the right.
 */
/** Where the local party is in what a source sends (stereo channel 1 or 2; attachment or remoteAttachment). */
export const CHANNEL_ORDERS = ['local-left', 'local-right'] as const;
export type ChannelOrder = (typeof CHANNEL_ORDERS)[number];
/** Known sources' channel layouts (see docs/stereo.md). */
export const SOURCE_PROFILES = ['generic', 'twilio-dual', 'freeswitch', 'asterisk-mixmonitor'] as const;
export type SourceProfile = (typeof SOURCE_PROFILES)[number];

/** Imagicle's `direction`: 0 unknown, 1 incoming, 2 outgoing (from the local party's side). */
export type Direction = 0 | 1 | 2;
export type Party = 'local' | 'remote';

export interface ProfileInfo {
  /** What position 1 (left channel, or `attachment`) carries, in the source's own terms. */
  first: string;
  /** What position 2 (right channel, or `remoteAttachment`) carries. */
  second: string;
  /**
   * `caller-first`: position 1 is the party that placed the call, so the order
   * follows the recording's `direction` (incoming: the caller is the remote
   * party). `channel-order`: no layout of its own; CHANNEL_ORDER applies.
   */
  layout: 'caller-first' | 'channel-order';
  /** The source's own documentation of its layout. */
  references: readonly string[];
}

export const PROFILES: Readonly<Record<SourceProfile, ProfileInfo>> = {
  generic: {
    first: 'the local party (with CHANNEL_ORDER=local-left)',
    second: 'the remote party (with CHANNEL_ORDER=local-left)',
    layout: 'channel-order',
    references: [],
  },
  'twilio-dual': {
    first: 'the parent call leg (the call that reached Twilio first: the caller)',
    second: 'the child call leg (the party <Dial> connected)',
    layout: 'caller-first',
    references: [
      'https://www.twilio.com/docs/voice/api/call-resource (RecordingChannels)',
      'https://www.twilio.com/docs/flex/developer/insights/enable-dual-channel-recordings',
    ],
  },
  freeswitch: {
    first: 'leg A, the caller (RECORD_STEREO=true; RECORD_STEREO_SWAP=true reverses it)',
    second: 'leg B, the callee',
    layout: 'caller-first',
    references: [
      'https://developer.signalwire.com/freeswitch/Channel-Variables-Catalog/RECORD_STEREO_16352883',
      'https://developer.signalwire.com/freeswitch/Channel-Variables-Catalog/RECORD_STEREO_SWAP_16353895',
    ],
  },
  'asterisk-mixmonitor': {
    first:
      'the r() "receive" file: audio read from the channel MixMonitor runs on (the caller, when MixMonitor is started in the dialplan before Dial)',
    second: 'the t() "transmit" file: audio written to that channel (the other party)',
    layout: 'caller-first',
    references: ['https://docs.asterisk.org/Latest_API/API_Documentation/Dialplan_Applications/MixMonitor/'],
  },
};

export interface OrderChoice {
  /** Per request (form field or query string); wins over the profile. */
  channelOrder?: ChannelOrder | undefined;
  /** Per request; wins over SOURCE_PROFILE. */
  sourceProfile?: SourceProfile | undefined;
}

export interface OrderDefaults {
  channelOrder: ChannelOrder;
  sourceProfile: SourceProfile;
}

export interface OrderDecision {
  order: ChannelOrder;
  profile: SourceProfile;
  /** What decided the order, for the report and the log. */
  decidedBy: string;
  warnings: string[];
}

const DIRECTION_NAMES: Record<Direction, string> = { 0: 'unknown', 1: 'incoming', 2: 'outgoing' };

/**
 * The order for one request: the request's channelOrder, else its profile,
 * else SOURCE_PROFILE, else CHANNEL_ORDER. A caller-first profile needs the
 * direction; without it (0, or no metadata) CHANNEL_ORDER applies, with a
 * warning.
 */
export function resolveOrder(
  choice: OrderChoice,
  defaults: OrderDefaults,
  direction: Direction | undefined,
): OrderDecision {
  const profile = choice.sourceProfile ?? defaults.sourceProfile;
  if (choice.channelOrder) {
    return {
      order: choice.channelOrder,
      profile,
      decidedBy: `channelOrder=${choice.channelOrder} in the request`,
      warnings: [],
    };
  }
  const where = choice.sourceProfile ? 'sourceProfile in the request' : 'SOURCE_PROFILE';
  const fallback = `CHANNEL_ORDER=${defaults.channelOrder}`;
  if (PROFILES[profile].layout === 'channel-order') {
    return {
      order: defaults.channelOrder,
      profile,
      decidedBy: profile === 'generic' ? fallback : `${where}=${profile}`,
      warnings: [],
    };
  }
  if (direction === 1 || direction === 2) {
    // Incoming: the remote party called, so it is on position 1.
    const order: ChannelOrder = direction === 1 ? 'local-right' : 'local-left';
    return {
      order,
      profile,
      decidedBy: `${where}=${profile}: position 1 carries the caller, and the call is ${DIRECTION_NAMES[direction]}, so the local party is ${order === 'local-left' ? 'on position 1' : 'on position 2'}`,
      warnings: [],
    };
  }
  return {
    order: defaults.channelOrder,
    profile,
    decidedBy: fallback,
    warnings: [
      `${where}=${profile} puts the caller first, but the call's direction is ${direction === undefined ? 'not given' : 'unknown (0)'}: ${fallback} was used; send direction 1 or 2, or channelOrder, to be sure`,
    ],
  };
}

/** Input channels (0-based) that feed the output's left (local) and right (remote) channels. */
export interface ChannelRoute {
  local: number;
  remote: number;
}

export const IDENTITY_ROUTE: ChannelRoute = { local: 0, remote: 1 };

export function isIdentity(route: ChannelRoute): boolean {
  return route.local === 0 && route.remote === 1;
}

/** The route of a two-channel input under an order. */
export function routeForOrder(order: ChannelOrder): ChannelRoute {
  return order === 'local-left' ? { local: 0, remote: 1 } : { local: 1, remote: 0 };
}

/**
 * Parses an explicit selection such as `3,4`: 1-based input channels for the
 * local and the remote party, in that order. Returns an error message or the
 * 0-based route.
 */
export function parseChannelSelection(text: string): ChannelRoute | string {
  const m = /^\s*(\d{1,2})\s*,\s*(\d{1,2})\s*$/.exec(text);
  if (!m) return 'channels must be two 1-based channel numbers, local first then remote, e.g. "3,4"';
  const local = Number(m[1]);
  const remote = Number(m[2]);
  if (local < 1 || remote < 1) return 'channels are numbered from 1';
  if (local === remote) return 'channels must name two different channels';
  return { local: local - 1, remote: remote - 1 };
}

/** Checks a selection against the input's channel count; returns a problem or undefined. */
export function selectionProblem(route: ChannelRoute, inputChannels: number): string | undefined {
  const highest = Math.max(route.local, route.remote) + 1;
  if (highest > inputChannels) {
    return `channels=${route.local + 1},${route.remote + 1} asks for channel ${highest}, but the audio has ${inputChannels} channel${inputChannels === 1 ? '' : 's'}`;
  }
  return undefined;
}

/** Which party position 1 and 2 hold under an order. */
export function partiesFor(order: ChannelOrder): readonly [Party, Party] {
  return order === 'local-left' ? ['local', 'remote'] : ['remote', 'local'];
}
