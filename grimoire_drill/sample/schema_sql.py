"""Le Grimoire's PostgreSQL schema as production has it: init.sql, then the Alembic migrations.

Declarative SQL (longer than a module usually is, on purpose), copied in shape from the app's
database/init.sql and backend/alembic/versions.
"""

from __future__ import annotations

# The newest revision in backend/alembic/versions (82d65ab11e92_add_user_authentication_fields.py).
ALEMBIC_HEAD = "82d65ab11e92"

# database/init.sql: extension, the nine tables, their indexes, the updated_at trigger function and
# triggers. (Its INSERT of the IGA and Metro rows is done with the other rows, by COPY.)
INIT_SQL = """
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    email VARCHAR(255) UNIQUE NOT NULL,
    name VARCHAR(255),
    avatar_url TEXT,
    oauth_provider VARCHAR(50) NOT NULL,
    oauth_provider_id VARCHAR(255) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (oauth_provider, oauth_provider_id)
);

CREATE TABLE recipes (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    title VARCHAR(500) NOT NULL,
    description TEXT,
    ingredients TEXT[] NOT NULL,
    instructions TEXT NOT NULL,
    servings INTEGER,
    prep_time INTEGER,
    cook_time INTEGER,
    total_time INTEGER,
    category VARCHAR(100),
    cuisine VARCHAR(100),
    image_url TEXT,
    original_image_url TEXT,
    source VARCHAR(255),
    user_id UUID REFERENCES users(id) ON DELETE SET NULL,
    is_public BOOLEAN DEFAULT true,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE recipe_tags (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    recipe_id UUID REFERENCES recipes(id) ON DELETE CASCADE,
    tag VARCHAR(100) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (recipe_id, tag)
);

CREATE TABLE grocery_stores (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    name VARCHAR(100) NOT NULL,
    code VARCHAR(50) UNIQUE NOT NULL,
    website_url TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE grocery_specials (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    store_id UUID REFERENCES grocery_stores(id) ON DELETE CASCADE,
    product_name VARCHAR(500) NOT NULL,
    product_category VARCHAR(100),
    original_price DECIMAL(10, 2),
    special_price DECIMAL(10, 2) NOT NULL,
    discount_percentage DECIMAL(5, 2),
    unit VARCHAR(50),
    description TEXT,
    image_url TEXT,
    valid_from DATE NOT NULL,
    valid_until DATE NOT NULL,
    scraped_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE shopping_lists (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE shopping_list_items (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    shopping_list_id UUID REFERENCES shopping_lists(id) ON DELETE CASCADE,
    recipe_id UUID REFERENCES recipes(id) ON DELETE SET NULL,
    ingredient_name VARCHAR(500) NOT NULL,
    quantity DECIMAL(10, 2),
    unit VARCHAR(50),
    is_purchased BOOLEAN DEFAULT false,
    matched_special_id UUID REFERENCES grocery_specials(id) ON DELETE SET NULL,
    notes TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE favorites (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    recipe_id UUID REFERENCES recipes(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (user_id, recipe_id)
);

CREATE TABLE ocr_jobs (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID REFERENCES users(id) ON DELETE SET NULL,
    image_path TEXT NOT NULL,
    status VARCHAR(50) DEFAULT 'pending',
    extracted_text TEXT,
    parsed_recipe_id UUID REFERENCES recipes(id) ON DELETE SET NULL,
    error_message TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_recipes_user_id ON recipes(user_id);
CREATE INDEX idx_recipes_is_public ON recipes(is_public);
CREATE INDEX idx_recipes_created_at ON recipes(created_at DESC);
CREATE INDEX idx_recipe_tags_recipe_id ON recipe_tags(recipe_id);
CREATE INDEX idx_recipe_tags_tag ON recipe_tags(tag);
CREATE INDEX idx_grocery_specials_store_id ON grocery_specials(store_id);
CREATE INDEX idx_grocery_specials_valid_dates ON grocery_specials(valid_from, valid_until);
CREATE INDEX idx_shopping_list_items_list_id ON shopping_list_items(shopping_list_id);
CREATE INDEX idx_favorites_user_id ON favorites(user_id);
CREATE INDEX idx_ocr_jobs_user_id ON ocr_jobs(user_id);
CREATE INDEX idx_ocr_jobs_status ON ocr_jobs(status);

CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = CURRENT_TIMESTAMP;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER update_users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_recipes_updated_at BEFORE UPDATE ON recipes
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_grocery_specials_updated_at BEFORE UPDATE ON grocery_specials
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_shopping_lists_updated_at BEFORE UPDATE ON shopping_lists
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_shopping_list_items_updated_at BEFORE UPDATE ON shopping_list_items
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_ocr_jobs_updated_at BEFORE UPDATE ON ocr_jobs
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
"""

# What the Alembic chain up to ALEMBIC_HEAD leaves behind on top of init.sql (net effect, in order:
# 7a642e86d852, b8753f97e123, 08272dd0516b, 653687a82143, 210983c36263, 51d56accfc10, 82d65ab11e92).
MIGRATED_SQL = f"""
CREATE TABLE ingredient_categories (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    name VARCHAR(100) NOT NULL UNIQUE,
    parent_category_id UUID REFERENCES ingredient_categories(id),
    display_order INTEGER,
    icon VARCHAR(50),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
    name_en VARCHAR(100),
    name_fr VARCHAR(100)
);

CREATE TABLE units (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    name VARCHAR(50) NOT NULL UNIQUE,
    abbreviation VARCHAR(20),
    type VARCHAR(50),
    system VARCHAR(20),
    conversion_to_base NUMERIC(10, 6),
    base_unit VARCHAR(50),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now()
);

CREATE TABLE ingredients (
    id INTEGER PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    english_name VARCHAR(255) NOT NULL,
    french_name VARCHAR(255) NOT NULL,
    gender VARCHAR(1),
    name_plural VARCHAR(255),
    category_id UUID REFERENCES ingredient_categories(id),
    subcategory VARCHAR(100),
    default_unit VARCHAR(50),
    aliases TEXT[],
    notes TEXT,
    is_active BOOLEAN DEFAULT 'true',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now()
);

CREATE TABLE recipe_ingredients (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    recipe_id UUID NOT NULL REFERENCES recipes(id) ON DELETE CASCADE,
    ingredient_id INTEGER REFERENCES ingredients(id) ON DELETE RESTRICT,
    quantity NUMERIC(10, 3),
    quantity_max NUMERIC(10, 3),
    unit VARCHAR(50),
    preparation_notes TEXT,
    is_optional BOOLEAN DEFAULT 'false',
    display_order INTEGER,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
    ingredient_off_id VARCHAR(255)
);

CREATE TABLE ingredient_images (
    id UUID PRIMARY KEY,
    ingredient_id INTEGER NOT NULL REFERENCES ingredients(id) ON DELETE CASCADE,
    image_url TEXT NOT NULL,
    thumbnail_url TEXT,
    source VARCHAR(50),
    source_id VARCHAR(255),
    photographer VARCHAR(255),
    photographer_url TEXT,
    width INTEGER,
    height INTEGER,
    alt_text TEXT,
    is_primary BOOLEAN DEFAULT 'false',
    is_approved BOOLEAN DEFAULT 'true',
    display_order INTEGER DEFAULT '0',
    relevance_score INTEGER,
    quality_score INTEGER,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now()
);
CREATE INDEX ix_ingredient_images_ingredient_id ON ingredient_images (ingredient_id);
CREATE INDEX ix_ingredient_images_is_primary ON ingredient_images (is_primary);

ALTER TABLE recipes ADD COLUMN difficulty_level VARCHAR(50);
ALTER TABLE recipes ADD COLUMN temperature INTEGER;
ALTER TABLE recipes ADD COLUMN temperature_unit VARCHAR(10);
ALTER TABLE recipes ADD COLUMN notes TEXT;
ALTER TABLE recipes ADD COLUMN equipment TEXT[];

ALTER TABLE shopping_list_items ADD COLUMN ingredient_off_id VARCHAR(255);

ALTER TABLE users ADD COLUMN username VARCHAR(100) NOT NULL;
CREATE UNIQUE INDEX ix_users_username ON users (username);
ALTER TABLE users ADD COLUMN password_hash VARCHAR(255);
CREATE TYPE userrole AS ENUM ('admin', 'collaborator', 'reader');
ALTER TABLE users ADD COLUMN role userrole NOT NULL;
ALTER TABLE users ADD COLUMN is_active BOOLEAN NOT NULL;
ALTER TABLE users ALTER COLUMN oauth_provider DROP NOT NULL;
ALTER TABLE users ALTER COLUMN oauth_provider_id DROP NOT NULL;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version (version_num) VALUES ('{ALEMBIC_HEAD}');
"""

# The classic pg_dump trap (CVE-2018-1058 hardening): pg_restore runs with an empty search_path, so an
# expression index whose function calls another function unqualified fails to build on restore,
# although the source database is perfectly healthy.
SEARCH_PATH_TRAP_SQL = """
CREATE FUNCTION strip_accents(text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT translate($1, 'àâäéèêëîïôöùûüç', 'aaaeeeeiioouuuc') $$;
CREATE FUNCTION title_key(text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT lower(strip_accents($1)) $$;
CREATE INDEX idx_recipes_title_key ON recipes (title_key(title));
"""
