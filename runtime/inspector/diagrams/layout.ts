// Lays a machine graph out with elkjs (ELK's layered algorithm, on a worker thread: layout-worker.ts): composite
// states hold their children, an initial-state dot sits in each compound state, every arrow is routed
// orthogonally with its label placed by ELK. Coordinates come back absolute (from the diagram's
// top-left corner), so the SVG writer draws everything in one coordinate system.

import { Worker } from 'node:worker_threads';
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api.js';
import type { GraphState, GraphTransition, MachineGraph } from './machine-graph.ts';

/** Text metrics of the SVG writer's font (12 px monospace): every glyph is this wide. */
export const FONT_SIZE = 12;
export const CHAR_WIDTH = 7.3;
export const LINE_HEIGHT = 16;
/** Height of a compound state's title bar. */
export const TITLE_HEIGHT = 22;
export const INITIAL_DOT = 10;

export const textWidth = (text: string): number => Math.ceil(text.length * CHAR_WIDTH);

export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface PlacedState extends Box {
  readonly state: GraphState;
  readonly compound: boolean;
}

export interface PlacedEdge {
  readonly transition: GraphTransition | null;
  /** Polyline: start, bend points, end. */
  readonly points: readonly { x: number; y: number }[];
  readonly label: (Box & { text: string }) | null;
}

export interface Layout {
  readonly width: number;
  readonly height: number;
  readonly states: readonly PlacedState[];
  /** Initial-state dots: one per compound state (and the root), keyed by the parent's path. */
  readonly initialDots: readonly (Box & { parent: string })[];
  readonly edges: readonly PlacedEdge[];
}

const PADDING = 12;
const nodeId = (path: string): string => (path === '' ? 'any' : `s:${path}`);
const dotId = (parent: string): string => `init:${parent}`;

/** Width and height of a state without children: its name, and a line saying how many internal transitions it has. */
const atomicSize = (state: GraphState): { width: number; height: number } => {
  const lines = [state.key, ...(state.internal.length > 0 ? [internalNote(state)] : [])];
  return {
    width: Math.max(60, ...lines.map(textWidth)) + 2 * PADDING,
    height: lines.length * LINE_HEIGHT + 14,
  };
};

export const internalNote = (state: GraphState): string =>
  `↻ ${state.internal.length} internal transition${state.internal.length === 1 ? '' : 's'}`;

/** ELK's graph of a machine graph: nested nodes, and every edge on the root (hierarchy handled by ELK). */
const elkGraph = (graph: MachineGraph): ElkNode => {
  const children = new Map<string, ElkNode[]>();
  const childList = (parent: string): ElkNode[] => {
    let list = children.get(parent);
    if (!list) {
      list = [];
      children.set(parent, list);
    }
    return list;
  };
  const edges: ElkExtendedEdge[] = [];
  const compound = new Set(graph.states.map((s) => s.parent).filter((p) => p !== ''));
  const nodes = new Map<string, ElkNode>();
  // The `any state` pseudo-state last: it is no step of the chart's order.
  const ordered = [
    ...graph.states.filter((s) => s.path !== ''),
    ...graph.states.filter((s) => s.path === ''),
  ];
  for (const state of ordered) {
    const node: ElkNode = compound.has(state.path)
      ? {
          id: nodeId(state.path),
          layoutOptions: {
            'elk.padding': `[top=${TITLE_HEIGHT + 8},left=${PADDING},bottom=${PADDING},right=${PADDING}]`,
            'elk.nodeSize.constraints': 'MINIMUM_SIZE',
            'elk.nodeSize.minimum': `(${textWidth(state.key) + 2 * PADDING}, ${TITLE_HEIGHT + 20})`,
          },
        }
      : { id: nodeId(state.path), ...atomicSize(state) };
    nodes.set(state.path, node);
    // The initial dot first: in the model order ELK follows, a chart starts where it starts.
    if (state.initial) {
      childList(state.parent).push({ id: dotId(state.parent), width: INITIAL_DOT, height: INITIAL_DOT });
      edges.push({
        id: `e:init:${state.parent}`,
        sources: [dotId(state.parent)],
        targets: [nodeId(state.path)],
      });
    }
    childList(state.path === '' ? '' : state.parent).push(node);
  }
  for (const [path, node] of nodes) {
    const list = children.get(path);
    if (list && path !== '') node.children = list;
  }
  graph.transitions.forEach((transition, index) => {
    edges.push({
      id: `e:${index}`,
      sources: [nodeId(transition.source)],
      targets: [nodeId(transition.target)],
      labels: [{ text: transition.label, width: textWidth(transition.label), height: LINE_HEIGHT }],
    });
  });
  return {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.spacing.nodeNodeBetweenLayers': '36',
      'elk.spacing.nodeNode': '24',
      'elk.spacing.edgeLabel': '4',
      'elk.edgeLabels.inline': 'false',
      'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
      // Arrows against the definition's order are the ones reversed: states read top-down as written.
      'elk.layered.cycleBreaking.strategy': 'MODEL_ORDER',
      'elk.padding': '[top=16,left=16,bottom=16,right=16]',
      'elk.json.edgeCoords': 'ROOT',
      'elk.json.shapeCoords': 'ROOT',
    },
    children: children.get('') ?? [],
    edges,
  };
};

/** One worker thread for every layout of the process, started on first use; idle, it does not keep the process alive. */
let worker: Worker | null = null;
let nextId = 0;
const pending = new Map<number, { resolve: (laid: ElkNode) => void; reject: (error: Error) => void }>();

const layoutWorker = (): Worker => {
  if (worker) return worker;
  // layout-worker.js: in a checkout a shim loading layout-worker.ts through tsx, in the package its JavaScript.
  const started = new Worker(new URL('./layout-worker.js', import.meta.url));
  started.on('message', (message: { id: number; laid?: ElkNode; error?: string }) => {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (pending.size === 0) started.unref();
    if (message.laid) waiter?.resolve(message.laid);
    else waiter?.reject(new Error(`elkjs could not lay the statechart out: ${message.error}`));
  });
  const fail = (error: Error) => {
    worker = null;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  started.on('error', fail);
  started.on('exit', (code) => fail(new Error(`the layout worker exited (code ${code})`)));
  worker = started;
  return started;
};

const elkLayout = (graph: ElkNode): Promise<ElkNode> =>
  new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    // Held while a layout is pending (a caller awaits it), let go when idle so the process can exit.
    const thread = layoutWorker();
    thread.ref();
    thread.postMessage({ id, graph });
  });

/** Lay the graph out. Deterministic: the same graph gives the same coordinates. */
export const layoutGraph = async (graph: MachineGraph): Promise<Layout> => {
  const laid = await elkLayout(elkGraph(graph));
  const byId = new Map<string, ElkNode>();
  const collect = (node: ElkNode): void => {
    for (const child of node.children ?? []) {
      byId.set(child.id, child);
      collect(child);
    }
  };
  collect(laid);
  const box = (node: ElkNode | undefined): Box => ({
    x: node?.x ?? 0,
    y: node?.y ?? 0,
    width: node?.width ?? 0,
    height: node?.height ?? 0,
  });
  const states = graph.states.map((state) => ({
    state,
    compound: (byId.get(nodeId(state.path))?.children?.length ?? 0) > 0,
    ...box(byId.get(nodeId(state.path))),
  }));
  const initialDots = [...byId.keys()]
    .filter((id) => id.startsWith('init:'))
    .map((id) => ({ parent: id.slice('init:'.length), ...box(byId.get(id)) }));
  const edges = (laid.edges ?? []).map((edge) => {
    const index = edge.id.startsWith('e:init:') ? -1 : Number(edge.id.slice(2));
    const points = (edge.sections ?? []).flatMap((section) => [
      section.startPoint,
      ...(section.bendPoints ?? []),
      section.endPoint,
    ]);
    const label = edge.labels?.[0];
    return {
      transition: index < 0 ? null : (graph.transitions[index] ?? null),
      points,
      label: label ? { text: label.text ?? '', ...box(label as ElkNode) } : null,
    };
  });
  return { width: laid.width ?? 0, height: laid.height ?? 0, states, initialDots, edges };
};
