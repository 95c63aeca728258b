import { ConfigError } from '../util/errors';
import { AttributeType, TensorDataType, onnxType } from './onnx-proto';

/**
 * A small builder for float32 ONNX graphs: initializers, graph inputs and outputs with
 * (possibly symbolic) shapes, nodes in execution order, metadata, and encoding to bytes.
 * It checks as it goes what ONNX Runtime would otherwise reject with a less helpful message:
 * every value name is defined once, and every node input is defined before the node.
 */

/** One dimension: a fixed size, or a symbolic name such as 'batch' for a dynamic size. */
export type Dimension = number | string;

/** A node attribute, tagged with its ONNX kind because a JS number cannot tell int from float. */
export type OnnxAttribute =
  | { int: number }
  | { float: number }
  | { ints: number[] }
  | { floats: number[] }
  | { string: string };

export interface OnnxBuilderOptions {
  /** Name of the graph. Default 'graph'. */
  graphName?: string;
  /** Version of the default ('ai.onnx') operator set. Default 13. */
  opsetVersion?: number;
  /** ONNX IR version written in the model. Default 7 (the one that came with opset 13). */
  irVersion?: number;
  /** Recorded as producer_version. Default '0.1.0'. */
  producerVersion?: string;
  /** Free text recorded as the model's doc_string. Default none. */
  docString?: string;
}

export interface InitializerOptions {
  name: string;
  /** Shape; the product must equal values.length. [] for a scalar. */
  dims: number[];
  /** Row-major float32 values. */
  values: Float32Array;
}

export interface ValueOptions {
  name: string;
  /** Shape, e.g. ['batch', 7]. */
  dims: Dimension[];
}

export interface NodeOptions {
  /** Operator, e.g. 'MatMul', 'Relu', 'Softmax'. */
  opType: string;
  /** Names of values defined earlier (inputs, initializers, outputs of earlier nodes). */
  inputs: string[];
  /** Names of the values this node defines; each must be new. */
  outputs: string[];
  /** Node name. Default '<opType>_<index>'. */
  name?: string;
  attributes?: Record<string, OnnxAttribute>;
}

export const PRODUCER_NAME = 'dyncim';

interface StoredInitializer {
  name: string;
  dims: number[];
  values: Float32Array;
}

interface StoredNode {
  name: string;
  opType: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, OnnxAttribute>;
}

/** Little-endian float32 bytes, as ONNX's raw_data requires whatever the host's byte order. */
function littleEndianBytes(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return bytes;
}

function encodeAttribute(name: string, attribute: OnnxAttribute): Record<string, unknown> {
  if ('int' in attribute) return { name, type: AttributeType.INT, i: attribute.int };
  if ('float' in attribute) return { name, type: AttributeType.FLOAT, f: attribute.float };
  if ('ints' in attribute) return { name, type: AttributeType.INTS, ints: attribute.ints };
  if ('floats' in attribute) return { name, type: AttributeType.FLOATS, floats: attribute.floats };
  return { name, type: AttributeType.STRING, s: new TextEncoder().encode(attribute.string) };
}

function encodeDimension(dimension: Dimension): Record<string, unknown> {
  return typeof dimension === 'number' ? { dim_value: dimension } : { dim_param: dimension };
}

function floatValueInfo(value: ValueOptions): Record<string, unknown> {
  return {
    name: value.name,
    type: {
      tensor_type: {
        elem_type: TensorDataType.FLOAT,
        shape: { dim: value.dims.map(encodeDimension) },
      },
    },
  };
}

export class OnnxGraphBuilder {
  private readonly options: Required<Omit<OnnxBuilderOptions, 'docString'>> & {
    docString?: string;
  };

  private readonly initializers: StoredInitializer[] = [];
  private readonly inputs: ValueOptions[] = [];
  private readonly outputs: ValueOptions[] = [];
  private readonly nodes: StoredNode[] = [];
  private readonly metadata = new Map<string, string>();

  /** Every value name defined so far, with what defined it (for error messages). */
  private readonly definedBy = new Map<string, string>();
  private readonly nodeNames = new Set<string>();

  constructor(options: OnnxBuilderOptions = {}) {
    this.options = {
      graphName: options.graphName ?? 'graph',
      opsetVersion: options.opsetVersion ?? 13,
      irVersion: options.irVersion ?? 7,
      producerVersion: options.producerVersion ?? '0.1.0',
      docString: options.docString,
    };
  }

  /** Adds a constant float32 tensor; returns its name. */
  addInitializer(initializer: InitializerOptions): string {
    const { name, dims, values } = initializer;
    for (const size of dims) {
      if (!Number.isInteger(size) || size < 0) {
        throw new ConfigError(
          `initializer '${name}' has dims [${dims}]; expected non-negative integers`,
        );
      }
    }

    const expected = dims.reduce((product, size) => product * size, 1);
    if (values.length !== expected) {
      throw new ConfigError(
        `initializer '${name}' holds ${values.length} values; dims [${dims}] need ${expected}`,
      );
    }

    this.define(name, 'an initializer');
    this.initializers.push({ name, dims: dims.slice(), values: values.slice() });
    return name;
  }

  /** Declares a float32 graph input; returns its name. */
  addInput(input: ValueOptions): string {
    this.checkDimensions(input, 'input');
    this.define(input.name, 'a graph input');
    this.inputs.push({ name: input.name, dims: input.dims.slice() });
    return input.name;
  }

  /** Declares a float32 graph output; the value must be defined by the time encode() runs. */
  addOutput(output: ValueOptions): string {
    this.checkDimensions(output, 'output');
    if (this.outputs.some((existing) => existing.name === output.name)) {
      throw new ConfigError(`graph output '${output.name}' is declared twice`);
    }
    this.outputs.push({ name: output.name, dims: output.dims.slice() });
    return output.name;
  }

  /** Appends a node; nodes must be added in execution order. Returns its first output. */
  addNode(node: NodeOptions): string {
    const name = node.name ?? `${node.opType}_${this.nodes.length}`;
    if (this.nodeNames.has(name)) throw new ConfigError(`node name '${name}' is used twice`);
    if (node.outputs.length === 0) throw new ConfigError(`node '${name}' has no outputs`);

    for (const input of node.inputs) {
      // an empty name is ONNX's way of leaving an optional input out
      if (input !== '' && !this.definedBy.has(input)) {
        throw new ConfigError(
          `node '${name}' (${node.opType}) reads '${input}', which no input, initializer ` +
            'or earlier node defines',
        );
      }
    }

    for (const output of node.outputs) this.define(output, `node '${name}'`);
    this.nodeNames.add(name);
    this.nodes.push({
      name,
      opType: node.opType,
      inputs: node.inputs.slice(),
      outputs: node.outputs.slice(),
      attributes: { ...(node.attributes ?? {}) },
    });
    return node.outputs[0];
  }

  /** Sets one metadata_props entry. */
  setMetadata(key: string, value: string): void {
    if (key === '') throw new ConfigError('metadata keys must not be empty');
    this.metadata.set(key, value);
  }

  /** Whether a value of this name has been defined. */
  has(name: string): boolean {
    return this.definedBy.has(name);
  }

  /** The ModelProto bytes. */
  encode(): Uint8Array {
    for (const output of this.outputs) {
      if (!this.definedBy.has(output.name)) {
        throw new ConfigError(`graph output '${output.name}' is not defined by any node or input`);
      }
    }

    const modelType = onnxType('ModelProto');
    const model = {
      ir_version: this.options.irVersion,
      producer_name: PRODUCER_NAME,
      producer_version: this.options.producerVersion,
      doc_string: this.options.docString,
      opset_import: [{ domain: '', version: this.options.opsetVersion }],
      metadata_props: [...this.metadata].map(([key, value]) => ({ key, value })),
      graph: this.graphObject(),
    };
    return modelType.encode(modelType.fromObject(model)).finish();
  }

  private graphObject(): Record<string, unknown> {
    return {
      name: this.options.graphName,
      initializer: this.initializers.map((initializer) => ({
        name: initializer.name,
        dims: initializer.dims,
        data_type: TensorDataType.FLOAT,
        raw_data: littleEndianBytes(initializer.values),
      })),
      input: this.inputs.map(floatValueInfo),
      output: this.outputs.map(floatValueInfo),
      node: this.nodes.map((node) => ({
        name: node.name,
        op_type: node.opType,
        input: node.inputs,
        output: node.outputs,
        attribute: Object.entries(node.attributes).map(([key, value]) =>
          encodeAttribute(key, value),
        ),
      })),
    };
  }

  private define(name: string, what: string): void {
    if (name === '') throw new ConfigError(`${what} has an empty name`);

    const previous = this.definedBy.get(name);
    if (previous) {
      throw new ConfigError(`value name '${name}' is defined twice: by ${previous} and ${what}`);
    }
    this.definedBy.set(name, what);
  }

  private checkDimensions(value: ValueOptions, what: string): void {
    for (const dimension of value.dims) {
      const fixed = typeof dimension === 'number' && Number.isInteger(dimension) && dimension > 0;
      const symbolic = typeof dimension === 'string' && dimension !== '';
      if (!fixed && !symbolic) {
        throw new ConfigError(
          `${what} '${value.name}' has dims [${value.dims}]; expected positive integers ` +
            "or symbolic names such as 'batch'",
        );
      }
    }
  }
}
