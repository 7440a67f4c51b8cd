package io.ferry;

import java.lang.reflect.Array;
import java.util.Map;

/**
 * A small JSON serializer for event properties: Map (String keys), Iterable and arrays, String, Character, Boolean,
 * integral numbers, finite floating-point numbers, and null. Anything else, a non-finite number or nesting deeper
 * than 64 levels (a cycle) throws IllegalArgumentException.
 */
final class Json {
  private static final int MAX_DEPTH = 64;

  private Json() {}

  static String object(Map<String, ?> map) {
    StringBuilder sb = new StringBuilder();
    write(sb, map, 0);
    return sb.toString();
  }

  private static void write(StringBuilder sb, Object v, int depth) {
    if (depth > MAX_DEPTH) throw new IllegalArgumentException("properties nest deeper than " + MAX_DEPTH);
    if (v == null) {
      sb.append("null");
    } else if (v instanceof String || v instanceof Character) {
      string(sb, v.toString());
    } else if (v instanceof Boolean) {
      sb.append(((Boolean) v).booleanValue() ? "true" : "false");
    } else if (v instanceof Double || v instanceof Float) {
      double d = ((Number) v).doubleValue();
      if (Double.isNaN(d) || Double.isInfinite(d)) {
        throw new IllegalArgumentException("a property is not a finite number: " + d);
      }
      if (d == Math.rint(d) && Math.abs(d) < 1e15) {
        sb.append((long) d); // 3.0 -> 3
      } else {
        sb.append(d);
      }
    } else if (v instanceof Byte || v instanceof Short || v instanceof Integer || v instanceof Long
        || v instanceof java.math.BigInteger || v instanceof java.util.concurrent.atomic.AtomicInteger
        || v instanceof java.util.concurrent.atomic.AtomicLong) {
      sb.append(v.toString());
    } else if (v instanceof java.math.BigDecimal) {
      sb.append(((java.math.BigDecimal) v).toString());
    } else if (v instanceof Map) {
      sb.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
        if (!(e.getKey() instanceof String)) {
          throw new IllegalArgumentException("a property key is not a String: " + e.getKey());
        }
        if (!first) sb.append(',');
        first = false;
        string(sb, (String) e.getKey());
        sb.append(':');
        write(sb, e.getValue(), depth + 1);
      }
      sb.append('}');
    } else if (v instanceof Iterable) {
      sb.append('[');
      boolean first = true;
      for (Object o : (Iterable<?>) v) {
        if (!first) sb.append(',');
        first = false;
        write(sb, o, depth + 1);
      }
      sb.append(']');
    } else if (v.getClass().isArray()) {
      sb.append('[');
      int n = Array.getLength(v);
      for (int i = 0; i < n; i++) {
        if (i > 0) sb.append(',');
        write(sb, Array.get(v, i), depth + 1);
      }
      sb.append(']');
    } else {
      throw new IllegalArgumentException("a property value of type " + v.getClass().getName() + " has no JSON form");
    }
  }

  private static void string(StringBuilder sb, String s) {
    sb.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"': sb.append("\\\""); break;
        case '\\': sb.append("\\\\"); break;
        case '\n': sb.append("\\n"); break;
        case '\r': sb.append("\\r"); break;
        case '\t': sb.append("\\t"); break;
        case '\b': sb.append("\\b"); break;
        case '\f': sb.append("\\f"); break;
        default:
          if (c < 0x20) {
            sb.append(String.format("\\u%04x", (int) c));
          } else {
            sb.append(c); // non-ASCII stays as is; lone surrogates are caught by the UTF-8 encoder
          }
      }
    }
    sb.append('"');
  }
}
