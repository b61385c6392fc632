-- test/data/sample.sql: deterministic sample catalog for development and benchmarks.
--
--   psql -v ON_ERROR_STOP=1 -d catalog -f test/data/sample.sql [-v products=N] [-v seed=S]
--
-- Run as a superuser (it writes the tables directly, below the API) into a
-- database where `CREATE EXTENSION catalog` was done and the catalog is
-- empty.  Defaults: products=100000, seed=42.
--
-- What it makes:
--   - 492 categories: 12 departments, 8 subcategories each, 4 leaf categories
--     each ("Home & Kitchen" > "Cookware" > "Frying Pans"), ids 1 to 492,
--     slugs built from the path ("home-kitchen-cookware-frying-pans");
--   - N products in the leaf categories, ids 1 to N, with names built from
--     word lists ("Nordwind Lightweight Merino Wool Hiking Socks, Charcoal,
--     Size L"), SKUs "NW-SOC-000123", a plain-text description, status mostly
--     published (about 10% draft, 3% archived), prices 0.50 to 5000.00,
--     currency mostly USD (some EUR and GBP), small jsonb attributes, and
--     timestamps spread over the two years before 2025-01-01 00:00 UTC.
--
-- Determinism: every choice is a hash of (seed, product number, purpose)
-- through hashint8extended(), never random() or now(), so the same N and
-- seed give the same rows on every machine.  Set-based: one INSERT ...
-- SELECT FROM generate_series() per table; every constraint, foreign key and
-- trigger of the schema stays on.

\set ON_ERROR_STOP on
\set QUIET on
\if :{?products}
\else
\set products 100000
\endif
\if :{?seed}
\else
\set seed 42
\endif

SET client_min_messages = warning;
\echo sample.sql: products=:products seed=:seed

BEGIN;

-- Refuse to run where it would not give the documented result.
DO $check$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'sample.sql must run as a superuser'
            USING ERRCODE = '42501',
                  HINT = 'Connect as the cluster superuser (for example postgres).';
    END IF;
    IF EXISTS (SELECT 1 FROM catalog.category) OR EXISTS (SELECT 1 FROM catalog.product) THEN
        RAISE EXCEPTION 'sample.sql needs an empty catalog'
            USING ERRCODE = '55000',
                  DETAIL = 'catalog.category or catalog.product already has rows.',
                  HINT = 'Load it into a new database.';
    END IF;
END
$check$;

SELECT (:'products')::bigint >= 0 AS products_ok, (:'seed')::bigint IS NOT NULL AS seed_ok \gset
\if :products_ok
\else
\echo sample.sql: products must be a non-negative integer
\quit
\endif

-- pick(seed, n, salt, m): a deterministic integer in [0, m) for product n.
-- Inlined by the planner (one SQL expression).
CREATE FUNCTION pg_temp.pick(seed bigint, n bigint, salt integer, m integer)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ((pg_catalog.hashint8extended(n, seed * 1000 + salt) & 9223372036854775807) % m)::integer $$;

-- unit(seed, n, salt): a deterministic double precision in [0, 1).
CREATE FUNCTION pg_temp.unit(seed bigint, n bigint, salt integer)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (pg_catalog.hashint8extended(n, seed * 1000 + salt) & 4503599627370495)::double precision / 4503599627370496.0 $$;

-- slugify(text): "Home & Kitchen" -> "home-kitchen".
CREATE FUNCTION pg_temp.slugify(t text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT pg_catalog.btrim(pg_catalog.regexp_replace(pg_catalog.lower(t), '[^a-z0-9]+', '-', 'g'), '-') $$;

-- lower_words(text): lower case except acronyms ("LED Bulbs" -> "LED bulbs").
CREATE FUNCTION pg_temp.lower_words(t text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT pg_catalog.string_agg(CASE WHEN w ~ '^[A-Z0-9]{2,}$' THEN w ELSE pg_catalog.lower(w) END, ' ' ORDER BY i)
    FROM pg_catalog.regexp_split_to_table(t, ' ') WITH ORDINALITY AS s(w, i)
$$;

------------------------------------------------------------------------------
-- Word lists.
------------------------------------------------------------------------------
CREATE TEMP TABLE sample_dept (
    d         integer PRIMARY KEY,
    name      text NOT NULL,
    sentences text[] NOT NULL        -- second sentence of a description
) ON COMMIT DROP;

INSERT INTO sample_dept VALUES
(1, 'Home & Kitchen', '{"Dishwasher safe and easy to clean.","Designed for everyday cooking and built to last.","Backed by a two-year warranty.","A reliable favourite in busy kitchens."}'),
(2, 'Sports & Outdoors', '{"Built for long days on the trail.","Tested in wind, rain and mud.","Light enough to take anywhere.","Made for training in all seasons."}'),
(3, 'Electronics', '{"Sets up in minutes with the companion app.","Comes with a two-year warranty and free updates.","Energy efficient and quiet in use.","Works with the devices you already own."}'),
(4, 'Clothing', '{"Cut for a relaxed, comfortable fit.","Machine washable at 30 degrees.","Soft on the skin and made to last.","Ethically made in certified factories."}'),
(5, 'Shoes & Accessories', '{"Finished by hand with attention to detail.","A timeless design for every day.","Comes in a recyclable gift box.","Made to be worn for years."}'),
(6, 'Garden & Patio', '{"Weather resistant for year-round use outdoors.","Easy to assemble with the included tools.","Built to survive many seasons in the garden.","Made with responsibly sourced materials."}'),
(7, 'Toys & Games', '{"Suitable for ages 6 and up.","Encourages creative and imaginative play.","Safety tested to European toy standards.","Fun for the whole family."}'),
(8, 'Beauty & Personal Care', '{"Dermatologically tested and cruelty free.","Suitable for all skin types.","Free from parabens and artificial colours.","Made in small batches."}'),
(9, 'Office & Stationery', '{"Ideal for the office, school or home.","Made from responsibly sourced materials.","Built for everyday use at a busy desk.","A dependable choice for any workspace."}'),
(10, 'Tools & DIY', '{"Built for professional and home use.","Comes with a three-year guarantee.","Balanced and comfortable in the hand.","Tough enough for the building site."}'),
(11, 'Pet Supplies', '{"Recommended by vets.","Made with natural ingredients and materials.","Easy to clean and built to last.","Loved by pets and their owners."}'),
(12, 'Food & Drink', '{"Sourced from trusted growers.","No artificial flavours or preservatives.","Packed in recyclable packaging.","Best enjoyed fresh."}');

-- One row per subcategory: its department, name, the materials (or kinds)
-- that fit its products, optional sizes, whether products come in colours,
-- and its four leaf categories.  A leaf is "Plural" (product noun made
-- singular by rule), "Plural|Singular" (irregular) or "Name*" (kept as is).
CREATE TEMP TABLE sample_sub (
    d         integer NOT NULL,
    s         integer NOT NULL,
    name      text NOT NULL,
    materials text[] NOT NULL,
    sizes     text[] NOT NULL,
    coloured  boolean NOT NULL,
    leaves    text[] NOT NULL,
    PRIMARY KEY (d, s)
) ON COMMIT DROP;

INSERT INTO sample_sub VALUES
(1, 1, 'Cookware', '{Stainless Steel,Cast Iron,Hard-Anodised Aluminium,Carbon Steel,Copper}', '{20 cm,24 cm,28 cm}', true, '{Frying Pans,Saucepans,Stockpots,Dutch Ovens}'),
(1, 2, 'Cutlery', '{Stainless Steel,Damascus Steel,Ceramic,Carbon Steel}', '{}', true, '{Chef Knives|Chef Knife,Paring Knives|Paring Knife,Knife Blocks,Kitchen Shears*}'),
(1, 3, 'Bakeware', '{Non-Stick Steel,Silicone,Glass,Aluminium,Stoneware}', '{Small,Medium,Large}', true, '{Baking Sheets,Cake Tins,Muffin Trays,Mixing Bowls}'),
(1, 4, 'Small Appliances', '{Stainless Steel,Brushed Steel,Glass,BPA-Free}', '{}', true, '{Blenders,Toasters,Electric Kettles,Coffee Makers}'),
(1, 5, 'Tableware', '{Porcelain,Stoneware,Bone China,Tempered Glass,Enamel}', '{Set of 2,Set of 4,Set of 6}', true, '{Dinner Plates,Cereal Bowls,Drinking Glasses,Coffee Mugs}'),
(1, 6, 'Kitchen Storage', '{Glass,Bamboo,Stainless Steel,BPA-Free}', '{Small,Medium,Large}', true, '{Food Containers,Spice Racks,Bread Bins,Pantry Jars}'),
(1, 7, 'Bedding', '{Egyptian Cotton,Linen,Bamboo Lyocell,Percale Cotton,Microfibre}', '{Single,Double,King,Super King}', true, '{Duvet Covers,Pillows,Fitted Sheets,Throw Blankets}'),
(1, 8, 'Bath', '{Organic Cotton,Turkish Cotton,Bamboo,Waffle Cotton}', '{}', true, '{Bath Towels,Shower Curtains,Bath Mats,Hand Towels}'),

(2, 1, 'Camping', '{Ripstop Nylon,Polyester,Aluminium,Titanium}', '{}', true, '{Tents,Sleeping Bags,Camp Stoves,Daypacks}'),
(2, 2, 'Hiking', '{Merino Wool,Gore-Tex,Ripstop Nylon,Softshell}', '{Size S,Size M,Size L}', true, '{Hiking Boots*,Hiking Socks*,Hiking Trousers*,Rain Ponchos}'),
(2, 3, 'Cycling', '{Carbon Fibre,Aluminium,Polycarbonate,Reflective}', '{Size S,Size M,Size L}', true, '{Bike Helmets,Bike Lights,Cycling Gloves*,Bike Locks}'),
(2, 4, 'Fitness', '{Natural Rubber,Cast Iron,Neoprene,TPE,Latex}', '{}', true, '{Yoga Mats,Dumbbells,Resistance Bands,Kettlebells}'),
(2, 5, 'Running', '{Mesh,Recycled Polyester,Breathable Knit,Lightweight Nylon}', '{Size S,Size M,Size L,Size XL}', true, '{Running Shoes*,Running Shorts*,Running Belts,Running Jackets}'),
(2, 6, 'Water Sports', '{Neoprene,Silicone,Polycarbonate,Inflatable PVC}', '{Size S,Size M,Size L}', true, '{Swim Goggles*,Wetsuits,Paddle Boards,Life Jackets}'),
(2, 7, 'Team Sports', '{Synthetic Leather,Rubber,Foam,Latex}', '{Size 3,Size 4,Size 5}', true, '{Footballs,Basketballs,Shin Guards*,Goalkeeper Gloves*}'),
(2, 8, 'Winter Sports', '{Merino Wool,Polycarbonate,Fleece,Insulated Nylon}', '{Size S,Size M,Size L}', true, '{Ski Goggles*,Ski Gloves*,Snowboards,Thermal Base Layers}'),

(3, 1, 'Audio', '{Wireless,Noise-Cancelling,Bluetooth,Studio}', '{}', true, '{Headphones*,Portable Speakers,Earbuds*,Soundbars}'),
(3, 2, 'Computers', '{Aluminium,Touchscreen,Ultra-Thin,Business}', '{}', true, '{Laptops,Monitors,Desktop PCs,Tablets}'),
(3, 3, 'Computer Accessories', '{Wireless,Mechanical,Ergonomic,Aluminium}', '{}', true, '{Keyboards,Mice|Mouse,Webcams,Laptop Stands}'),
(3, 4, 'Phone Accessories', '{Silicone,Leather,Tempered Glass,Recycled Plastic}', '{}', true, '{Phone Cases,Wireless Chargers,Screen Protectors,Power Banks}'),
(3, 5, 'Cameras', '{Waterproof,4K,Compact,Weather-Sealed}', '{}', true, '{Action Cameras,Camera Lenses|Camera Lens,Tripods,Camera Bags}'),
(3, 6, 'TV & Video', '{4K,OLED,Full HD,Smart}', '{}', true, '{Televisions,Streaming Sticks,TV Mounts,Projectors}'),
(3, 7, 'Smart Home', '{Wi-Fi,Zigbee,Voice-Controlled,Battery-Powered}', '{}', true, '{Smart Plugs,Smart Bulbs,Video Doorbells,Thermostats}'),
(3, 8, 'Gaming', '{Wireless,RGB,Ergonomic,Pro-Grade}', '{}', true, '{Game Controllers,Gaming Headsets,Gaming Chairs,Gaming Mice|Gaming Mouse}'),

(4, 1, 'Tops', '{Organic Cotton,Linen,Pique Cotton,Jersey,Modal}', '{Size XS,Size S,Size M,Size L,Size XL,Size XXL}', true, '{T-Shirts,Polo Shirts,Sweatshirts,Tank Tops}'),
(4, 2, 'Trousers', '{Denim,Stretch Cotton,Twill,Corduroy,Linen}', '{Size XS,Size S,Size M,Size L,Size XL,Size XXL}', true, '{Jeans*,Chinos*,Cargo Trousers*,Joggers*}'),
(4, 3, 'Outerwear', '{Waterproof Nylon,Recycled Down,Wool Blend,Waxed Cotton}', '{Size XS,Size S,Size M,Size L,Size XL,Size XXL}', true, '{Rain Jackets,Puffer Jackets,Overcoats,Gilets}'),
(4, 4, 'Dresses & Skirts', '{Viscose,Linen,Cotton Poplin,Silk,Jersey}', '{Size XS,Size S,Size M,Size L,Size XL}', true, '{Summer Dresses,Midi Skirts,Wrap Dresses,Shirt Dresses}'),
(4, 5, 'Knitwear', '{Merino Wool,Cashmere,Lambswool,Cotton Knit}', '{Size XS,Size S,Size M,Size L,Size XL,Size XXL}', true, '{Jumpers,Cardigans,Roll Necks,Knitted Vests}'),
(4, 6, 'Underwear', '{Organic Cotton,Modal,Bamboo,Microfibre}', '{Size XS,Size S,Size M,Size L,Size XL}', true, '{Boxer Shorts*,Briefs*,Bras,Vests}'),
(4, 7, 'Nightwear', '{Brushed Cotton,Satin,Flannel,Jersey}', '{Size XS,Size S,Size M,Size L,Size XL}', true, '{Pyjama Sets,Nightdresses,Dressing Gowns,Lounge Trousers*}'),
(4, 8, 'Socks & Hosiery', '{Merino Wool,Bamboo,Cotton Rich,Nylon}', '{Size S,Size M,Size L}', true, '{Ankle Socks*,Dress Socks*,Tights*,Sport Socks*}'),

(5, 1, 'Shoes', '{Leather,Suede,Canvas,Recycled Knit}', '{Size 38,Size 40,Size 42,Size 44,Size 46}', true, '{Trainers*,Loafers*,Sandals*,Ankle Boots*}'),
(5, 2, 'Bags', '{Leather,Canvas,Recycled Nylon,Waxed Cotton}', '{}', true, '{Backpacks,Tote Bags,Messenger Bags,Duffel Bags}'),
(5, 3, 'Watches', '{Stainless Steel,Titanium,Leather Strap,Ceramic}', '{}', true, '{Analogue Watches,Digital Watches,Chronographs,Watch Straps}'),
(5, 4, 'Jewellery', '{Sterling Silver,Gold-Plated,Rose Gold,Titanium}', '{}', false, '{Necklaces,Earrings*,Bracelets,Rings}'),
(5, 5, 'Hats & Caps', '{Cotton Twill,Wool,Straw,Recycled Polyester}', '{Size S/M,Size L/XL}', true, '{Baseball Caps,Beanies,Sun Hats,Bucket Hats}'),
(5, 6, 'Belts & Wallets', '{Full-Grain Leather,Vegan Leather,Canvas,Suede}', '{}', true, '{Belts,Wallets,Card Holders,Key Rings}'),
(5, 7, 'Eyewear', '{Acetate,Metal,Polarised,Titanium}', '{}', true, '{Sunglasses*,Sports Sunglasses*,Reading Glasses*,Glasses Cases}'),
(5, 8, 'Scarves & Gloves', '{Wool,Silk,Cashmere,Leather}', '{}', true, '{Scarves|Scarf,Snoods,Gloves*,Mittens*}'),

(6, 1, 'Garden Tools', '{Stainless Steel,Carbon Steel,Ash Wood,Fibreglass}', '{}', false, '{Spades,Pruning Shears*,Rakes,Trowels}'),
(6, 2, 'Watering', '{Expandable,Reinforced PVC,Galvanised Steel,Recycled Plastic}', '{}', true, '{Garden Hoses,Watering Cans,Sprinklers,Hose Reels}'),
(6, 3, 'Garden Furniture', '{Teak,Acacia Wood,Powder-Coated Steel,Rattan,Aluminium}', '{}', true, '{Garden Chairs,Patio Tables,Sun Loungers,Hammocks}'),
(6, 4, 'Barbecues', '{Stainless Steel,Cast Iron,Enamelled Steel,Heavy-Gauge Steel}', '{}', true, '{Charcoal Barbecues,Gas Barbecues,Barbecue Tools|Barbecue Tool Set,Barbecue Covers}'),
(6, 5, 'Planters', '{Terracotta,Glazed Ceramic,Galvanised Steel,Recycled Plastic,Cedar}', '{Small,Medium,Large}', true, '{Plant Pots,Raised Beds,Hanging Baskets,Window Boxes}'),
(6, 6, 'Lawn Care', '{Cordless,Petrol,Electric,Battery-Powered}', '{}', false, '{Lawn Mowers,Leaf Blowers,Grass Trimmers,Lawn Scarifiers}'),
(6, 7, 'Outdoor Lighting', '{Solar,LED,Stainless Steel,Weatherproof}', '{}', true, '{Path Lights,String Lights,Lanterns,Floodlights}'),
(6, 8, 'Wildlife Care', '{Cedar,Recycled Plastic,Metal,Ceramic}', '{}', false, '{Bird Feeders,Bird Boxes,Bee Hotels,Hedgehog Houses}'),

(7, 1, 'Building Toys', '{Wooden,Plastic,Magnetic,Recycled}', '{100 Pieces,250 Pieces,500 Pieces}', false, '{Building Blocks*,Construction Kits,Marble Runs,Train Sets}'),
(7, 2, 'Games', '{Family,Cooperative,Classic,Party}', '{}', false, '{Dice Games,Card Games,Trivia Games,Word Games}'),
(7, 3, 'Puzzles', '{Cardboard,Wooden,Recycled Board,Premium}', '{500 Pieces,1000 Pieces,2000 Pieces}', false, '{Jigsaw Puzzles,3D Puzzles,Brain Teasers,Floor Puzzles}'),
(7, 4, 'Dolls & Playsets', '{Vinyl,Wooden,Soft Fabric,Plastic}', '{}', true, '{Fashion Dolls,Baby Dolls,Dolls Houses,Play Kitchens}'),
(7, 5, 'Outdoor Play', '{Nylon,Wooden,Plastic,Steel}', '{}', true, '{Kites,Water Pistols,Swing Sets,Play Tents}'),
(7, 6, 'Remote Control', '{High-Speed,All-Terrain,Waterproof,Beginner}', '{}', true, '{RC Cars,Camera Drones,RC Boats,RC Helicopters}'),
(7, 7, 'Arts & Crafts', '{Washable,Non-Toxic,Eco,Wooden}', '{}', false, '{Crayons*,Modelling Clay,Craft Kits,Easels}'),
(7, 8, 'Soft Toys', '{Plush,Organic Cotton,Recycled Fibre,Knitted}', '{Small,Medium,Large}', true, '{Teddy Bears,Plush Animals,Hand Puppets,Comfort Blankets}'),

(8, 1, 'Skin Care', '{Hyaluronic,Vitamin C,Fragrance-Free,Aloe Vera,Retinol}', '{30 ml,50 ml,100 ml}', false, '{Moisturisers,Cleansers,Face Serums,Sunscreens}'),
(8, 2, 'Hair Care', '{Argan Oil,Keratin,Sulphate-Free,Coconut}', '{250 ml,500 ml}', false, '{Shampoos,Conditioners,Hair Masks,Hair Oils}'),
(8, 3, 'Hair Tools', '{Ceramic,Ionic,Tourmaline,Titanium}', '{}', true, '{Hair Dryers,Hair Straighteners,Curling Wands,Hair Brushes}'),
(8, 4, 'Makeup', '{Long-Wear,Matte,Vegan,Hydrating}', '{}', false, '{Lipsticks,Mascaras,Foundations,Eyeshadow Palettes}'),
(8, 5, 'Fragrance', '{Citrus,Woody,Floral,Amber,Fresh}', '{30 ml,50 ml,100 ml}', false, '{Eau de Parfum,Eau de Toilette,Body Mists,Aftershaves}'),
(8, 6, 'Shaving', '{Stainless Steel,Sensitive,Aloe Vera,Cordless}', '{}', false, '{Safety Razors,Shaving Creams,Beard Trimmers,Razor Blades*}'),
(8, 7, 'Oral Care', '{Bamboo,Sonic,Whitening,Fluoride-Free}', '{}', false, '{Toothbrushes,Electric Toothbrushes,Toothpastes,Dental Floss}'),
(8, 8, 'Bath & Body', '{Shea Butter,Lavender,Coconut,Sea Salt,Oat}', '{100 ml,250 ml,500 ml}', false, '{Shower Gels,Body Lotions,Bath Salts*,Hand Creams}'),

(9, 1, 'Writing Instruments', '{Stainless Steel,Brass,Recycled Plastic,Lacquered}', '{}', true, '{Ballpoint Pens,Fountain Pens,Pencils*,Highlighters*}'),
(9, 2, 'Paper Products', '{Recycled,Acid-Free,Dotted,Hardcover}', '{A4,A5,A6}', true, '{Notebooks,Sticky Notes*,Printer Paper,Envelopes*}'),
(9, 3, 'Desk Accessories', '{Bamboo,Aluminium,Walnut,Felt}', '{}', true, '{Desk Organisers,Desk Lamps,Staplers,Monitor Risers}'),
(9, 4, 'Filing & Storage', '{Cardboard,Polypropylene,Steel,Recycled Board}', '{A4,Foolscap}', true, '{Ring Binders,File Folders,Archive Boxes,Document Wallets}'),
(9, 5, 'Office Furniture', '{Mesh,Oak Veneer,Steel,Ergonomic}', '{}', true, '{Office Chairs,Standing Desks,Bookcases,Filing Cabinets}'),
(9, 6, 'Printers & Ink', '{Wireless,Colour,Mono,High-Yield}', '{}', false, '{Inkjet Printers,Laser Printers,Ink Cartridges,Toner Cartridges}'),
(9, 7, 'School Supplies', '{Recycled,Transparent,Metal,Soft-Touch}', '{}', true, '{Pencil Cases,Rulers,Erasers,Calculators}'),
(9, 8, 'Presentation', '{Magnetic,Aluminium Frame,Cork,Glass}', '{60 x 90 cm,90 x 120 cm}', false, '{Whiteboards,Notice Boards,Flip Chart Easels,Laser Pointers}'),

(10, 1, 'Power Tools', '{Cordless,Brushless,18V,Corded}', '{}', false, '{Drill Drivers,Circular Saws,Angle Grinders,Jigsaws}'),
(10, 2, 'Hand Tools', '{Chrome Vanadium,Forged Steel,Fibreglass,Insulated}', '{}', false, '{Claw Hammers,Screwdriver Sets,Adjustable Spanners,Pliers*}'),
(10, 3, 'Measuring Tools', '{Magnetic,Digital,Aluminium,Self-Levelling}', '{}', false, '{Tape Measures,Spirit Levels,Laser Levels,Stud Finders}'),
(10, 4, 'Fixings', '{Zinc-Plated,Stainless Steel,Brass,Nylon}', '{Pack of 50,Pack of 100,Pack of 200}', false, '{Wood Screws*,Wall Plugs*,Nails*,Cable Ties*}'),
(10, 5, 'Painting & Decorating', '{Synthetic,Natural Bristle,Microfibre,Foam}', '{}', false, '{Paint Brushes,Paint Rollers,Paint Pads,Dust Sheets}'),
(10, 6, 'Electrical', '{Heavy-Duty,Surge-Protected,Smart,Energy-Saving}', '{}', false, '{Extension Leads,Light Switches,Socket Testers,LED Bulbs}'),
(10, 7, 'Plumbing', '{Chrome,Brass,Stainless Steel,Copper}', '{}', false, '{Mixer Taps,Pipe Wrenches,Shower Heads,Plungers}'),
(10, 8, 'Workwear & Safety', '{Nitrile,Polycarbonate,Hi-Vis,Padded}', '{Size M,Size L,Size XL}', false, '{Work Gloves*,Safety Glasses*,Ear Defenders*,Hard Hats}'),

(11, 1, 'Dog Food', '{Grain-Free,Chicken,Salmon,Lamb,Hypoallergenic}', '{2 kg,6 kg,12 kg}', false, '{Dry Dog Food,Wet Dog Food,Dog Treats*,Puppy Food}'),
(11, 2, 'Cat Food', '{Grain-Free,Tuna,Chicken,Salmon,Indoor}', '{400 g,2 kg,4 kg}', false, '{Dry Cat Food,Wet Cat Food,Cat Treats*,Kitten Food}'),
(11, 3, 'Dog Accessories', '{Nylon,Leather,Reflective,Memory Foam}', '{Size S,Size M,Size L}', true, '{Dog Collars,Dog Leads,Dog Beds,Dog Harnesses}'),
(11, 4, 'Cat Accessories', '{Sisal,Natural Fibre,Plush,Wooden}', '{}', true, '{Cat Trees,Scratching Posts,Cat Beds,Cat Toys}'),
(11, 5, 'Aquatics', '{Glass,Acrylic,LED,Tropical}', '{20 L,60 L,120 L}', false, '{Aquariums,Aquarium Filters,Aquarium Heaters,Aquarium Lights}'),
(11, 6, 'Bird Supplies', '{Wire,Natural Wood,Wild,Stainless Steel}', '{}', false, '{Bird Cages,Bird Seed,Bird Perches,Cuttlebones}'),
(11, 7, 'Small Animals', '{Wooden,Wire,Timothy Hay,Natural}', '{}', false, '{Hamster Cages,Rabbit Hutches,Hay Racks,Exercise Wheels}'),
(11, 8, 'Pet Health', '{Natural,Vet-Approved,Hypoallergenic,Organic}', '{}', false, '{Flea Treatments,Pet Shampoos,Pet Vitamins*,Grooming Brushes}'),

(12, 1, 'Coffee & Tea', '{Organic,Fair Trade,Single Origin,Decaf}', '{250 g,500 g,1 kg}', false, '{Coffee Beans*,Ground Coffee,Green Tea,Herbal Tea}'),
(12, 2, 'Snacks', '{Sea Salt,Roasted,Dark Chocolate,Honey Glazed}', '{100 g,200 g,500 g}', false, '{Crisps*,Mixed Nuts*,Chocolate Bars,Granola Bars}'),
(12, 3, 'Pantry Staples', '{Organic,Premium,Wholegrain,Stone-Ground}', '{500 g,1 kg,2 kg}', false, '{Olive Oil,Dried Pasta,Basmati Rice,Flour}'),
(12, 4, 'Breakfast', '{Organic,Gluten-Free,Wildflower,Low Sugar}', '{350 g,500 g,750 g}', false, '{Cereals|Breakfast Cereal,Porridge Oats*,Honey,Fruit Jams}'),
(12, 5, 'Condiments & Spices', '{Smoked,Hot,Mild,Organic}', '{}', false, '{Spice Blends,Hot Sauces,Sea Salt Flakes*,Peppercorns*}'),
(12, 6, 'Baking Ingredients', '{Organic,Unrefined,Fairtrade,Pure}', '{}', false, '{Cake Mixes,Cane Sugar,Cocoa Powder,Vanilla Extract}'),
(12, 7, 'Drinks', '{Sparkling,Still,Sugar-Free,Cold-Pressed}', '{330 ml,1 L}', false, '{Mineral Water,Fruit Juices,Soft Drinks,Energy Drinks}'),
(12, 8, 'Health Foods', '{Plant-Based,Whey,Organic,Raw}', '{}', false, '{Protein Powders,Chia Seeds*,Dried Fruit,Superfood Blends}');

ALTER TABLE sample_sub ADD COLUMN materials_lower text[];
UPDATE sample_sub SET materials_lower =
    ARRAY(SELECT pg_temp.lower_words(m) FROM pg_catalog.unnest(materials) WITH ORDINALITY AS u(m, i) ORDER BY i);

-- The leaves, numbered 0.. in department/subcategory/position order, with
-- their category id and the product noun.
CREATE TEMP TABLE sample_leaf ON COMMIT DROP AS
SELECT (row_number() OVER (ORDER BY s.d, s.s, l.pos) - 1)::integer AS idx,
       s.d, s.s, l.pos,
       pg_catalog.rtrim(pg_catalog.split_part(l.entry, '|', 1), '*') AS name,
       CASE
           WHEN l.entry LIKE '%|%' THEN pg_catalog.split_part(l.entry, '|', 2)
           WHEN l.entry LIKE '%*' THEN pg_catalog.rtrim(l.entry, '*')
           WHEN l.entry ~ 'ies$' THEN pg_catalog.regexp_replace(l.entry, 'ies$', 'y')
           WHEN l.entry ~ '(ss|sh|ch|x)es$' THEN pg_catalog.regexp_replace(l.entry, 'es$', '')
           WHEN l.entry ~ '[^s]s$' THEN pg_catalog.regexp_replace(l.entry, 's$', '')
           ELSE l.entry
       END AS noun
FROM sample_sub s,
     LATERAL pg_catalog.unnest(s.leaves) WITH ORDINALITY AS l(entry, pos);

ALTER TABLE sample_leaf ADD COLUMN id bigint, ADD COLUMN sku_code text, ADD COLUMN noun_lower text;
UPDATE sample_leaf SET
    id = 12 + 96 + idx + 1,                     -- after 12 departments and 96 subcategories
    sku_code = pg_catalog.rpad(pg_catalog.left(pg_catalog.upper(pg_catalog.regexp_replace(
                   pg_catalog.regexp_replace(noun, '^.* ', ''), '[^A-Za-z0-9]', '', 'g')), 3), 3, 'X'),
    noun_lower = pg_temp.lower_words(noun);
ALTER TABLE sample_leaf ADD PRIMARY KEY (idx);

-- Brands with their SKU prefix, adjectives and colours.
CREATE TEMP TABLE sample_words ON COMMIT DROP AS
SELECT '{Nordwind,Alder & Finch,Brightmoor,Cobalt Peak,Duneway,Ember Lane,Fjordline,Greyhaven,Harbour & Pine,Ironbark,Juniper Row,Kestrel,Larkspur,Meridian Works,Northpoint,Oakridge,Pelican Bay,Quillfield,Redfern,Silverbirch,Tidewater,Umbra,Vantage,Willowmere}'::text[] AS brands,
       '{NW,AF,BM,CP,DW,EL,FJ,GH,HP,IB,JR,KS,LS,MW,NP,OR,PB,QF,RF,SB,TW,UM,VT,WM}'::text[] AS brand_codes,
       '{Classic,Essential,Premium,Compact,Lightweight,Everyday,Professional,Deluxe,Heritage,Urban,Alpine,Coastal,Signature,Studio,Nordic,Original,Ultra,Select,Eco,Pro}'::text[] AS adjectives,
       '{Charcoal,Navy,Forest Green,Sand,Burgundy,Slate Grey,Ivory,Black,White,Ocean Blue,Terracotta,Mustard,Olive,Blush Pink,Graphite,Copper}'::text[] AS colours,
       (SELECT count(*) FROM sample_leaf)::integer AS nleaves;

------------------------------------------------------------------------------
-- Categories, parents first, with explicit ids: departments 1-12,
-- subcategories 13-108, leaves 109-492.
------------------------------------------------------------------------------
INSERT INTO catalog.category (id, parent_id, slug, name, created_at, updated_at, created_by, updated_by)
SELECT d.d, NULL, pg_temp.slugify(d.name), d.name,
       '2023-01-01 00:00:00+00', '2023-01-01 00:00:00+00', 'sample-loader', 'sample-loader'
FROM sample_dept d
ORDER BY d.d;

INSERT INTO catalog.category (id, parent_id, slug, name, created_at, updated_at, created_by, updated_by)
SELECT 12 + (s.d - 1) * 8 + s.s, s.d, pg_temp.slugify(d.name || ' ' || s.name), s.name,
       '2023-01-01 00:00:00+00', '2023-01-01 00:00:00+00', 'sample-loader', 'sample-loader'
FROM sample_sub s JOIN sample_dept d USING (d)
ORDER BY 1;

INSERT INTO catalog.category (id, parent_id, slug, name, created_at, updated_at, created_by, updated_by)
SELECT l.id, 12 + (l.d - 1) * 8 + l.s, pg_temp.slugify(d.name || ' ' || s.name || ' ' || l.name), l.name,
       '2023-01-01 00:00:00+00', '2023-01-01 00:00:00+00', 'sample-loader', 'sample-loader'
FROM sample_leaf l JOIN sample_sub s USING (d, s) JOIN sample_dept d USING (d)
ORDER BY l.id;

------------------------------------------------------------------------------
-- Products.  Salts: 1 leaf, 2 brand, 3 adjective, 4 material, 5 colour?,
-- 6 colour, 7 size?, 8 size, 9 status, 10 price, 11 price ending,
-- 12 currency, 13 weight, 14 created, 15 updated, 16 sentence.
------------------------------------------------------------------------------
INSERT INTO catalog.product (id, sku, name, description, status, category_id, price, currency,
                             attributes, created_at, updated_at, created_by, updated_by)
SELECT p.n AS id,
       p.brand_code || '-' || p.sku_code || '-' || pg_catalog.lpad(p.n::text, greatest(6, length(:'products')), '0') AS sku,
       p.brand || ' ' || p.adjective || ' ' || p.material || ' ' || p.noun
           || CASE WHEN p.colour IS NOT NULL THEN ', ' || p.colour ELSE '' END
           || CASE WHEN p.size IS NOT NULL THEN ', ' || p.size ELSE '' END AS name,
       p.adjective || ' ' || p.material_lower || ' ' || p.noun_lower || ' from ' || p.brand || '. '
           || p.sentence
           || CASE WHEN p.colour IS NOT NULL THEN ' Shown in ' || pg_catalog.lower(p.colour) || '.' ELSE '' END AS description,
       CASE WHEN p.status_pick < 10 THEN 'draft'
            WHEN p.status_pick < 13 THEN 'archived'
            ELSE 'published' END::catalog.product_status AS status,
       p.category_id AS category_id,
       CASE WHEN p.raw_price >= 5 AND p.ending_pick < 60
            THEN pg_catalog.floor(p.raw_price)::numeric + 0.99
            ELSE pg_catalog.round(p.raw_price::numeric, 2) END::numeric(12,2) AS price,
       CASE WHEN p.currency_pick < 80 THEN 'USD' WHEN p.currency_pick < 92 THEN 'EUR' ELSE 'GBP' END AS currency,
       pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
           'colour', pg_catalog.lower(p.colour),
           'size', p.size,
           'material', pg_catalog.lower(p.material),
           'weight_g', p.weight_g)) AS attributes,
       p.created_at AS created_at,
       LEAST(p.created_at + p.updated_after, '2025-01-01 00:00:00+00'::timestamptz) AS updated_at,
       'sample-loader' AS created_by, 'sample-loader' AS updated_by
FROM (
    SELECT g.n,
           w.brands[b.i] AS brand,
           w.brand_codes[b.i] AS brand_code,
           w.adjectives[1 + pg_temp.pick(:seed, g.n, 3, cardinality(w.adjectives))] AS adjective,
           s.materials[1 + pg_temp.pick(:seed, g.n, 4, cardinality(s.materials))] AS material,
           s.materials_lower[1 + pg_temp.pick(:seed, g.n, 4, cardinality(s.materials))] AS material_lower,
           l.noun, l.noun_lower, l.sku_code, l.id AS category_id,
           CASE WHEN s.coloured AND pg_temp.pick(:seed, g.n, 5, 100) < 60
                THEN w.colours[1 + pg_temp.pick(:seed, g.n, 6, cardinality(w.colours))] END AS colour,
           CASE WHEN cardinality(s.sizes) > 0 AND pg_temp.pick(:seed, g.n, 7, 100) < 50
                THEN s.sizes[1 + pg_temp.pick(:seed, g.n, 8, cardinality(s.sizes))] END AS size,
           pg_temp.pick(:seed, g.n, 9, 100) AS status_pick,
           0.5 * pg_catalog.power(10000.0::double precision, pg_temp.unit(:seed, g.n, 10)) AS raw_price,
           pg_temp.pick(:seed, g.n, 11, 100) AS ending_pick,
           pg_temp.pick(:seed, g.n, 12, 100) AS currency_pick,
           50 + pg_temp.pick(:seed, g.n, 13, 4951) AS weight_g,
           '2025-01-01 00:00:00+00'::timestamptz
               - pg_catalog.make_interval(secs => pg_temp.pick(:seed, g.n, 14, 2 * 365 * 86400)) AS created_at,
           pg_catalog.make_interval(secs => pg_temp.pick(:seed, g.n, 15, 60 * 86400)) AS updated_after,
           d.sentences[1 + pg_temp.pick(:seed, g.n, 16, cardinality(d.sentences))] AS sentence
    FROM pg_catalog.generate_series(1::bigint, (:'products')::bigint) AS g(n)
    CROSS JOIN sample_words w
    CROSS JOIN LATERAL (SELECT 1 + pg_temp.pick(:seed, g.n, 2, cardinality(w.brands)) AS i) b
    JOIN sample_leaf l ON l.idx = pg_temp.pick(:seed, g.n, 1, w.nleaves)
    JOIN sample_sub s ON s.d = l.d AND s.s = l.s
    JOIN sample_dept d ON d.d = l.d
    -- no ORDER BY: the hash joins keep generate_series order, and a sort of
    -- a million wide rows would spill to disk for nothing
) p;

-- Identity columns continue after the explicit ids.
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('catalog.category', 'id'),
                         (SELECT max(id) FROM catalog.category)) AS category_id_seq \gset
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('catalog.product', 'id'),
                         greatest((SELECT max(id) FROM catalog.product), 1),
                         (SELECT max(id) FROM catalog.product) IS NOT NULL) AS product_id_seq \gset

COMMIT;

ANALYZE catalog.category;
ANALYZE catalog.product;

SELECT (SELECT count(*) FROM catalog.category) AS categories,
       (SELECT count(*) FROM catalog.product) AS products \gset
\echo sample.sql: loaded :categories categories and :products products
