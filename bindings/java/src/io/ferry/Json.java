package io.ferry;

import java.lang.reflect.Array;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small JSON serializer for event properties: Map (String keys), Iterable and arrays, String, Character, Boolean,
 * integral numbers, finite floating-point numbers, and null. Anything else, a non-finite number or nesting deeper
 * than 64 levels (a cycle) throws IllegalArgumentException. And a small parser for the JSON libferry hands out
 * (receipts, request states): {@link #parseObject}.
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

  /**
   * Parses a JSON object into a Map (objects: LinkedHashMap; arrays: List; strings; numbers: Long when integral,
   * else Double; Boolean; null). IllegalArgumentException for text that is not one JSON object.
   */
  static Map<String, Object> parseObject(String text) {
    Parser p = new Parser(text);
    p.space();
    Object v = p.value(0);
    p.space();
    if (p.i != text.length() || !(v instanceof Map)) throw new IllegalArgumentException("not a JSON object");
    @SuppressWarnings("unchecked")
    Map<String, Object> m = (Map<String, Object>) v;
    return m;
  }

  private static final class Parser {
    final String s;
    int i;

    Parser(String s) {
      this.s = s;
    }

    void space() {
      while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) i++;
    }

    char peek() {
      if (i >= s.length()) throw new IllegalArgumentException("JSON ends early");
      return s.charAt(i);
    }

    void expect(char c) {
      if (peek() != c) throw new IllegalArgumentException("JSON: expected '" + c + "' at " + i);
      i++;
    }

    Object value(int depth) {
      if (depth > MAX_DEPTH) throw new IllegalArgumentException("JSON nests too deep");
      space();
      char c = peek();
      if (c == '{') {
        i++;
        Map<String, Object> m = new LinkedHashMap<>();
        space();
        if (peek() == '}') {
          i++;
          return m;
        }
        while (true) {
          space();
          String k = string();
          space();
          expect(':');
          m.put(k, value(depth + 1));
          space();
          if (peek() == ',') {
            i++;
            continue;
          }
          expect('}');
          return m;
        }
      }
      if (c == '[') {
        i++;
        List<Object> l = new ArrayList<>();
        space();
        if (peek() == ']') {
          i++;
          return l;
        }
        while (true) {
          l.add(value(depth + 1));
          space();
          if (peek() == ',') {
            i++;
            continue;
          }
          expect(']');
          return l;
        }
      }
      if (c == '"') return string();
      if (s.startsWith("true", i)) {
        i += 4;
        return Boolean.TRUE;
      }
      if (s.startsWith("false", i)) {
        i += 5;
        return Boolean.FALSE;
      }
      if (s.startsWith("null", i)) {
        i += 4;
        return null;
      }
      int start = i;
      while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
      String num = s.substring(start, i);
      try {
        if (num.indexOf('.') < 0 && num.indexOf('e') < 0 && num.indexOf('E') < 0) return Long.parseLong(num);
        return Double.parseDouble(num);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("JSON: bad value at " + start);
      }
    }

    String string() {
      expect('"');
      StringBuilder sb = new StringBuilder();
      while (true) {
        char c = peek();
        i++;
        if (c == '"') return sb.toString();
        if (c != '\\') {
          sb.append(c);
          continue;
        }
        char e = peek();
        i++;
        switch (e) {
          case 'n': sb.append('\n'); break;
          case 'r': sb.append('\r'); break;
          case 't': sb.append('\t'); break;
          case 'b': sb.append('\b'); break;
          case 'f': sb.append('\f'); break;
          case 'u':
            if (i + 4 > s.length()) throw new IllegalArgumentException("JSON ends early");
            sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
            i += 4;
            break;
          default: sb.append(e); break; // '"', '\\', '/'
        }
      }
    }
  }
}
