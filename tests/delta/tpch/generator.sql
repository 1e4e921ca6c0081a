-- A deterministic TPC-H data generator in SQL (no dbgen): the domains of
-- specification clause 4.2.3 (names, types, containers, segments, dates,
-- prices), with pseudo-random choices from hashint8extended, so the same
-- scale factor and seed give the same rows on every run and machine.
--
--   SELECT tpch_gen.load(0.01);        -- fills the tables of schema.sql
--   SELECT tpch_gen.rf1(15, 7);        -- RF1-like: 15 new orders + lineitems
--   SELECT tpch_gen.rf2(15, 8);        -- RF2-like: 15 orders + lineitems deleted
--
-- Row counts as in clause 4.2.5: SF * (10k suppliers, 200k parts, 800k
-- partsupp, 150k customers, 1.5M orders, ~6M lineitems); orders use every
-- customer whose key is not a multiple of 3 (a third have none, as dbgen
-- does; Q13 and Q22 depend on that); order keys are sparse (8 of every 32).
DROP SCHEMA IF EXISTS tpch_gen CASCADE;
CREATE SCHEMA tpch_gen;

-- The sizes of the loaded data set (one row).
CREATE TABLE tpch_gen.size (sf numeric NOT NULL, suppliers integer NOT NULL, parts integer NOT NULL,
                            customers integer NOT NULL, orders integer NOT NULL);

-- A uniform pseudo-random integer in [lo, hi], a pure function of (stream, i).
CREATE FUNCTION tpch_gen.rnd(stream bigint, i bigint, lo bigint, hi bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT lo + (hashint8extended(i, stream) & 9223372036854775807) % (hi - lo + 1) $$;

CREATE FUNCTION tpch_gen.pick(words text[], stream bigint, i bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT words[1 + tpch_gen.rnd(stream, i, 0, array_length(words, 1) - 1)] $$;

-- A word of comment text (the list has the words Q13 looks for).
CREATE FUNCTION tpch_gen.word(stream bigint, i bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT tpch_gen.pick(ARRAY['furiously', 'carefully', 'quickly', 'slyly', 'blithely',
      'final', 'regular', 'ironic', 'pending', 'express', 'bold', 'even', 'unusual', 'silent',
      'special', 'requests', 'packages', 'deposits', 'accounts', 'foxes', 'ideas', 'theodolites',
      'pinto', 'beans', 'instructions', 'dependencies', 'excuses', 'platelets', 'asymptotes',
      'courts', 'dolphins', 'sauternes', 'warthogs', 'frets', 'dinos', 'somas', 'patterns',
      'braids', 'players', 'waters', 'orbits', 'gifts', 'sheaves', 'depths', 'realms'],
      stream, i)
$$;

-- Comment text: words, cut to between len/2 and len characters.
CREATE FUNCTION tpch_gen.comment(stream bigint, i bigint, len integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT rtrim(left(tpch_gen.word(stream, i * 8) || ' ' || tpch_gen.word(stream, i * 8 + 1) || ' ' ||
                    tpch_gen.word(stream, i * 8 + 2) || ' ' || tpch_gen.word(stream, i * 8 + 3) || ' ' ||
                    tpch_gen.word(stream, i * 8 + 4) || ' ' || tpch_gen.word(stream, i * 8 + 5) || ' ' ||
                    tpch_gen.word(stream, i * 8 + 6) || ' ' || tpch_gen.word(stream, i * 8 + 7),
                    tpch_gen.rnd(stream, i, len / 2, len)::integer))
$$;

CREATE FUNCTION tpch_gen.phone(stream bigint, i bigint, nation integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT (nation + 10)::text || '-' || tpch_gen.rnd(stream, i, 100, 999) || '-' ||
         tpch_gen.rnd(stream + 1, i, 100, 999) || '-' || tpch_gen.rnd(stream + 2, i, 1000, 9999)
$$;

-- Clause 4.2.3: P_RETAILPRICE = (90000 + ((key/10) modulo 20001) + 100 * (key modulo 1000)) / 100.
CREATE FUNCTION tpch_gen.retailprice(k bigint) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ((90000 + ((k / 10) % 20001) + 100 * (k % 1000)) / 100.0)::numeric(12,2) $$;

-- The i-th of the 4 suppliers of part k among s suppliers (dbgen's formula).
CREATE FUNCTION tpch_gen.supplier_of_part(k bigint, i bigint, s bigint) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ((k + i * (s / 4 + (k - 1) / s)) % s + 1)::integer $$;

-- One of the 92 colors of P_NAME.
CREATE FUNCTION tpch_gen.color(stream bigint, i bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT tpch_gen.pick(ARRAY['almond', 'antique', 'aquamarine', 'azure', 'beige',
        'bisque', 'black', 'blanched', 'blue', 'blush', 'brown', 'burlywood', 'burnished',
        'chartreuse', 'chiffon', 'chocolate', 'coral', 'cornflower', 'cornsilk', 'cream', 'cyan',
        'dark', 'deep', 'dim', 'dodger', 'drab', 'firebrick', 'floral', 'forest', 'frosted',
        'gainsboro', 'ghost', 'goldenrod', 'green', 'grey', 'honeydew', 'hot', 'indian', 'ivory',
        'khaki', 'lace', 'lavender', 'lawn', 'lemon', 'light', 'lime', 'linen', 'magenta',
        'maroon', 'medium', 'metallic', 'midnight', 'mint', 'misty', 'moccasin', 'navajo', 'navy',
        'olive', 'orange', 'orchid', 'pale', 'papaya', 'peach', 'peru', 'pink', 'plum', 'powder',
        'puff', 'purple', 'red', 'rose', 'rosy', 'royal', 'saddle', 'salmon', 'sandy', 'seashell',
        'sienna', 'sky', 'slate', 'smoke', 'snow', 'spring', 'steel', 'tan', 'thistle', 'tomato',
        'turquoise', 'violet', 'wheat', 'white', 'yellow'], stream, i)
$$;

-- Parts lo..hi. (Every generator returns a set: PostgreSQL inlines set-returning
-- SQL functions into the calling query, which is two orders of magnitude
-- faster than calling a function per row.)
CREATE FUNCTION tpch_gen.parts(lo integer, hi integer, seed integer) RETURNS SETOF tpch.part
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT k,
    left(tpch_gen.color(s + 1, k * 8) || ' ' || tpch_gen.color(s + 1, k * 8 + 1) || ' ' ||
         tpch_gen.color(s + 1, k * 8 + 2) || ' ' || tpch_gen.color(s + 1, k * 8 + 3) || ' ' ||
         tpch_gen.color(s + 1, k * 8 + 4), 55),
    'Manufacturer#' || m,
    'Brand#' || m || tpch_gen.rnd(s + 3, k, 1, 5),
    tpch_gen.pick(ARRAY['STANDARD', 'SMALL', 'MEDIUM', 'LARGE', 'ECONOMY', 'PROMO'], s + 4, k) || ' ' ||
      tpch_gen.pick(ARRAY['ANODIZED', 'BURNISHED', 'PLATED', 'POLISHED', 'BRUSHED'], s + 5, k) || ' ' ||
      tpch_gen.pick(ARRAY['TIN', 'NICKEL', 'BRASS', 'STEEL', 'COPPER'], s + 6, k),
    tpch_gen.rnd(s + 7, k, 1, 50)::integer,
    tpch_gen.pick(ARRAY['SM', 'LG', 'MED', 'JUMBO', 'WRAP'], s + 8, k) || ' ' ||
      tpch_gen.pick(ARRAY['CASE', 'BOX', 'BAG', 'JAR', 'PKG', 'PACK', 'CAN', 'DRUM'], s + 9, k),
    tpch_gen.retailprice(k),
    tpch_gen.comment(s + 10, k, 23)
  FROM (SELECT seed::bigint * 1000 AS s) x, generate_series(lo, hi) k,
       LATERAL (SELECT tpch_gen.rnd(s + 2, k, 1, 5) AS m) y
$$;

CREATE FUNCTION tpch_gen.suppliers(lo integer, hi integer, seed integer)
RETURNS SETOF tpch.supplier
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT k, 'Supplier#' || lpad(k::text, 9, '0'),
    substr(md5(k::text || '/' || seed), 1, tpch_gen.rnd(s + 1, k, 10, 32)::integer),
    n, tpch_gen.phone(s + 2, k, n),
    (tpch_gen.rnd(s + 5, k, -99999, 999999) / 100.0)::numeric(12,2),
    -- 1 in 20 suppliers has complaints (Q16); dbgen's 5 in 10000 would give
    -- none at small scale.
    CASE WHEN tpch_gen.rnd(s + 6, k, 0, 19) = 0
         THEN 'Customer ' || tpch_gen.comment(s + 7, k, 80) || ' Complaints'
         ELSE tpch_gen.comment(s + 7, k, 101) END
  FROM (SELECT seed::bigint * 1000 AS s) x, generate_series(lo, hi) k,
       LATERAL (SELECT tpch_gen.rnd(s + 8, k, 0, 24)::integer AS n) y
$$;

-- The four partsupp rows of each part lo..hi.
CREATE FUNCTION tpch_gen.partsupps(lo integer, hi integer, suppliers integer, seed integer)
RETURNS SETOF tpch.partsupp
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT k, tpch_gen.supplier_of_part(k, i, suppliers),
    tpch_gen.rnd(s + 1, k * 4 + i, 1, 9999)::integer,
    (tpch_gen.rnd(s + 2, k * 4 + i, 100, 100000) / 100.0)::numeric(12,2),
    tpch_gen.comment(s + 3, k * 4 + i, 199)
  FROM (SELECT seed::bigint * 1000 AS s) x, generate_series(lo, hi) k, generate_series(0, 3) i
$$;

CREATE FUNCTION tpch_gen.customers(lo integer, hi integer, seed integer)
RETURNS SETOF tpch.customer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT k, 'Customer#' || lpad(k::text, 9, '0'),
    substr(md5(k::text || '+' || seed), 1, tpch_gen.rnd(s + 1, k, 10, 32)::integer),
    n, tpch_gen.phone(s + 2, k, n),
    (tpch_gen.rnd(s + 5, k, -99999, 999999) / 100.0)::numeric(12,2),
    tpch_gen.pick(ARRAY['AUTOMOBILE', 'BUILDING', 'FURNITURE', 'MACHINERY', 'HOUSEHOLD'], s + 6, k),
    tpch_gen.comment(s + 7, k, 117)
  FROM (SELECT seed::bigint * 1000 AS s) x, generate_series(lo, hi) k,
       LATERAL (SELECT tpch_gen.rnd(s + 8, k, 0, 24)::integer AS n) y
$$;

-- The date of order `okey`: between 1992-01-01 and 151 days before 1998-12-31.
CREATE FUNCTION tpch_gen.orderdate(okey bigint, seed integer) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT date '1992-01-01' + tpch_gen.rnd(seed::bigint * 1000 + 2, okey, 0, 2405)::integer $$;

-- The lineitems of order `okey` (1 to 7 of them).
CREATE FUNCTION tpch_gen.lines(okey integer, parts integer, suppliers integer, seed integer)
RETURNS SETOF tpch.lineitem
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT okey, a.pk, tpch_gen.supplier_of_part(a.pk, a.si, suppliers), j, a.qty,
    (a.qty * tpch_gen.retailprice(a.pk))::numeric(12,2),
    (tpch_gen.rnd(s + 4, r, 0, 10) / 100.0)::numeric(12,2),
    (tpch_gen.rnd(s + 5, r, 0, 8) / 100.0)::numeric(12,2),
    CASE WHEN b.receipt <= date '1995-06-17'
         THEN tpch_gen.pick(ARRAY['R', 'A'], s + 6, r) ELSE 'N' END,
    CASE WHEN a.ship > date '1995-06-17' THEN 'O' ELSE 'F' END,
    a.ship, a.commit_, b.receipt,
    tpch_gen.pick(ARRAY['DELIVER IN PERSON', 'COLLECT COD', 'NONE', 'TAKE BACK RETURN'], s + 7, r),
    tpch_gen.pick(ARRAY['REG AIR', 'AIR', 'RAIL', 'SHIP', 'TRUCK', 'MAIL', 'FOB'], s + 8, r),
    tpch_gen.comment(s + 9, r, 44)
  FROM (SELECT seed::bigint * 1000 AS s, tpch_gen.orderdate(okey, seed) AS odate) x,
       LATERAL generate_series(1, tpch_gen.rnd(s + 1, okey, 1, 7)::integer) j,
       LATERAL (SELECT okey::bigint * 8 + j AS r) rr,
       LATERAL (SELECT tpch_gen.rnd(s + 2, r, 1, parts)::integer AS pk,
                       tpch_gen.rnd(s + 3, r, 0, 3) AS si,
                       tpch_gen.rnd(s + 10, r, 1, 50)::numeric(12,2) AS qty,
                       odate + tpch_gen.rnd(s + 11, r, 1, 121)::integer AS ship,
                       odate + tpch_gen.rnd(s + 12, r, 30, 90)::integer AS commit_) a,
       LATERAL (SELECT a.ship + tpch_gen.rnd(s + 13, r, 1, 30)::integer AS receipt) b
$$;

-- The orders with these keys, with o_orderstatus and o_totalprice left to
-- the caller (they come from the order's lineitems): 'O' and 0 here.
CREATE FUNCTION tpch_gen.orders(keys integer[], customers integer, seed integer)
RETURNS SETOF tpch.orders
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT okey,
    CASE WHEN c % 3 = 0 THEN c - 1 ELSE c END,
    'O', 0,
    tpch_gen.orderdate(okey, seed),
    tpch_gen.pick(ARRAY['1-URGENT', '2-HIGH', '3-MEDIUM', '4-NOT SPECIFIED', '5-LOW'], s + 3, okey),
    'Clerk#' || lpad(tpch_gen.rnd(s + 4, okey, 1, greatest(customers / 150, 1))::text, 9, '0'),
    0,
    tpch_gen.comment(s + 5, okey, 79)
  FROM (SELECT seed::bigint * 1000 AS s) x, unnest(keys) okey,
       LATERAL (SELECT tpch_gen.rnd(s + 1, okey, 1, customers)::integer AS c) y
$$;

-- Inserts the orders with these keys and their lineitems; an order's status
-- and total price are computed from its lineitems (clause 4.2.3).
CREATE FUNCTION tpch_gen.add_orders(keys integer[], seed integer) RETURNS void
LANGUAGE plpgsql
-- The generators' row estimates are far off; JIT compiling them costs more
-- than running them.
SET jit = off
AS $$
DECLARE
  z tpch_gen.size;
BEGIN
  SELECT * INTO z FROM tpch_gen.size;
  CREATE TEMP TABLE tpch_new_lines AS
  SELECT l.* FROM unnest(keys) k, tpch_gen.lines(k, z.parts, z.suppliers, seed) l;
  INSERT INTO tpch.orders
  SELECT o.o_orderkey, o.o_custkey, t.status, t.total, o.o_orderdate, o.o_orderpriority, o.o_clerk,
         o.o_shippriority, o.o_comment
  FROM tpch_gen.orders(keys, z.customers, seed) o
  JOIN (SELECT l_orderkey,
               CASE WHEN bool_and(l_linestatus = 'F') THEN 'F'
                    WHEN bool_and(l_linestatus = 'O') THEN 'O' ELSE 'P' END AS status,
               sum(l_extendedprice * (1 + l_tax) * (1 - l_discount))::numeric(12,2) AS total
        FROM tpch_new_lines GROUP BY l_orderkey) t ON t.l_orderkey = o.o_orderkey;
  INSERT INTO tpch.lineitem SELECT * FROM tpch_new_lines;
  DROP TABLE tpch_new_lines;
END
$$;

CREATE FUNCTION tpch_gen.load(sf numeric, seed integer DEFAULT 1) RETURNS void
LANGUAGE plpgsql
SET jit = off
AS $$
DECLARE
  n_supp integer := greatest((10000 * sf)::integer, 4);
  n_part integer := greatest((200000 * sf)::integer, 1);
  n_cust integer := greatest((150000 * sf)::integer, 3);
  n_ord integer := greatest((1500000 * sf)::integer, 1);
BEGIN
  DELETE FROM tpch_gen.size;
  INSERT INTO tpch_gen.size VALUES (sf, n_supp, n_part, n_cust, n_ord);
  INSERT INTO tpch.region VALUES
    (0, 'AFRICA', 'lar deposits'), (1, 'AMERICA', 'hs use ironic, even requests'),
    (2, 'ASIA', 'ges. thinly even pinto beans'), (3, 'EUROPE', 'ly final courts cajole furiously'),
    (4, 'MIDDLE EAST', 'uickly special accounts cajole carefully');
  INSERT INTO tpch.nation
  SELECT k - 1, n.name, n.region, tpch_gen.comment(seed::bigint * 1000 + 999, k, 152)
  FROM unnest(ARRAY['ALGERIA', 'ARGENTINA', 'BRAZIL', 'CANADA', 'EGYPT', 'ETHIOPIA', 'FRANCE',
                    'GERMANY', 'INDIA', 'INDONESIA', 'IRAN', 'IRAQ', 'JAPAN', 'JORDAN', 'KENYA',
                    'MOROCCO', 'MOZAMBIQUE', 'PERU', 'CHINA', 'ROMANIA', 'SAUDI ARABIA', 'VIETNAM',
                    'RUSSIA', 'UNITED KINGDOM', 'UNITED STATES'],
              ARRAY[0, 1, 1, 1, 4, 0, 3, 3, 2, 2, 4, 4, 2, 4, 0, 0, 0, 1, 2, 3, 4, 2, 3, 3, 1])
       WITH ORDINALITY AS n(name, region, k);
  INSERT INTO tpch.supplier SELECT * FROM tpch_gen.suppliers(1, n_supp, seed);
  INSERT INTO tpch.part SELECT * FROM tpch_gen.parts(1, n_part, seed);
  INSERT INTO tpch.partsupp SELECT * FROM tpch_gen.partsupps(1, n_part, n_supp, seed)
  ON CONFLICT DO NOTHING;
  INSERT INTO tpch.customer SELECT * FROM tpch_gen.customers(1, n_cust, seed);
  PERFORM tpch_gen.add_orders(ARRAY(SELECT (((i - 1) / 8) * 32 + (i - 1) % 8 + 1)::integer
                                    FROM generate_series(1, n_ord) i), seed);
  ANALYZE tpch.region, tpch.nation, tpch.supplier, tpch.part, tpch.partsupp, tpch.customer,
          tpch.orders, tpch.lineitem;
END
$$;

-- RF1-like: n new orders (keys above every existing one) with their lineitems.
CREATE FUNCTION tpch_gen.rf1(n integer, seed integer) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  base integer;
BEGIN
  SELECT coalesce(max(o_orderkey), 0) INTO base FROM tpch.orders;
  PERFORM tpch_gen.add_orders(ARRAY(SELECT generate_series(base + 1, base + n)), seed);
END
$$;

-- RF2-like: n orders (chosen by seed) and their lineitems deleted.
CREATE FUNCTION tpch_gen.rf2(n integer, seed integer) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  CREATE TEMP TABLE tpch_rf2_keys AS
  SELECT o_orderkey FROM tpch.orders ORDER BY hashint4extended(o_orderkey, seed) LIMIT n;
  DELETE FROM tpch.lineitem WHERE l_orderkey IN (SELECT o_orderkey FROM tpch_rf2_keys);
  DELETE FROM tpch.orders WHERE o_orderkey IN (SELECT o_orderkey FROM tpch_rf2_keys);
  DROP TABLE tpch_rf2_keys;
END
$$;
