"""What Le Grimoire's production databases hold, generated deterministically and one record at a time.

Facts from sparck75/le-grimoire: the Beanie models (backend/app/models/mongodb/), the OpenFoodFacts
import scripts (backend/scripts/import_off_*.py), database/init.sql and the Alembic migrations.
Every record is a pure function of ``(seed, index)``, so a collection of any size streams without
being held in memory, PostgreSQL and MongoDB can mirror the same recipes, and the same seed gives
the same bytes.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType

from bson import ObjectId

from .catalog import (
    INGREDIENT_BASES,
    INGREDIENT_VARIANTS,
    CUSTOM_INGREDIENTS,
    CATEGORY_BASES,
    CATEGORY_ICONS,
    CATEGORY_VARIANTS,
    DISHES,
    TITLE_SUFFIXES,
    UNITS,
    STEP_VERBS,
    FIRST_NAMES,
    LAST_NAMES,
    MAIL_DOMAINS,
    SPECIAL_PRODUCTS,
    GROCERY_STORES,
)

# --- identities -------------------------------------------------------------------------------

def seed_digest(seed: int, kind: str, index: int) -> bytes:
    return hashlib.blake2b(f"{seed}:{kind}:{index}".encode(), digest_size=16).digest()


def det_rng(seed: int, kind: str, index: int) -> random.Random:
    """A private random stream for one record: records can be made in any order, any number of times."""
    return random.Random(int.from_bytes(seed_digest(seed, kind, index), "big"))


def det_uuid(seed: int, kind: str, index: int) -> uuid.UUID:
    """A version-4 UUID as uuid_generate_v4() / uuid.uuid4() would give, but reproducible."""
    return uuid.UUID(bytes=seed_digest(seed, kind, index), version=4)


def det_object_id(moment: datetime, seed: int, kind: str, index: int) -> ObjectId:
    """An ObjectId shaped like a driver's: creation second, per-process random, counter."""
    process = seed_digest(seed, f"process:{kind}", 0)
    counter = (int.from_bytes(process[5:8], "big") + index) & 0xFFFFFF
    seconds = int(moment.replace(tzinfo=timezone.utc).timestamp()) if moment.tzinfo is None else int(moment.timestamp())
    return ObjectId(seconds.to_bytes(4, "big") + process[:5] + counter.to_bytes(3, "big"))


def mongo_time(moment: datetime) -> datetime:
    """MongoDB keeps milliseconds and hands back naive UTC datetimes (Motor's default)."""
    moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# --- how much of everything ------------------------------------------------------------------

@dataclass(frozen=True)
class SampleCounts:
    """Row and document counts; ``scale`` multiplies them all (scale 1 is a small family site)."""

    recipes: int
    ingredients: int          # OpenFoodFacts taxonomy import + custom ones
    custom_ingredients: int
    categories: int
    users: int
    grocery_specials: int
    shopping_lists: int
    items_per_list: int
    favorites_per_user: int
    ocr_jobs: int
    other_uploads: int        # AI-extraction photos and wine labels, not referenced by recipes
    image_every: int          # every n-th recipe has an uploaded photo

    @classmethod
    def for_scale(cls, scale: int, *, tiny: bool = False) -> "SampleCounts":
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        if tiny:
            return cls(recipes=3, ingredients=12, custom_ingredients=1, categories=4, users=2,
                       grocery_specials=2, shopping_lists=1, items_per_list=2, favorites_per_user=1,
                       ocr_jobs=1, other_uploads=0, image_every=0)
        return cls(recipes=24 * scale, ingredients=220 * scale, custom_ingredients=8 * scale,
                   categories=40 * scale, users=9 * scale, grocery_specials=30 * scale,
                   shopping_lists=6 * scale, items_per_list=5, favorites_per_user=3,
                   ocr_jobs=5 * scale, other_uploads=2 * scale, image_every=4)

    def recipe_image_ext(self, index: int) -> str | None:
        """Which recipes carry an uploaded photo, and its format (mostly JPEG, some PNG)."""
        if not self.image_every or index % self.image_every:
            return None
        return "png" if (index // self.image_every) % 4 == 1 else "jpg"




# --- MongoDB documents (legrimoire) --------------------------------------------------------------

def _ingredient_identity(index: int) -> tuple[str, dict[str, str]]:
    """off_id and names of the index-th OpenFoodFacts ingredient; unique for any index."""
    bases = len(INGREDIENT_BASES)
    slug, en, fr, es, de, *_ = INGREDIENT_BASES[index % bases]
    round_ = index // bases
    if round_ == 0:
        return f"en:{slug}", {"en": en, "fr": fr, "es": es, "de": de}
    variant = (round_ - 1) % len(INGREDIENT_VARIANTS)
    cycle = (round_ - 1) // len(INGREDIENT_VARIANTS)
    v_slug, v_en, v_fr = INGREDIENT_VARIANTS[variant]
    tail = f"-{cycle + 1}" if cycle else ""
    names = {"en": f"{v_en} {en.lower()}{' ' + str(cycle + 1) if cycle else ''}",
             "fr": f"{fr} {v_fr}{' ' + str(cycle + 1) if cycle else ''}"}
    return f"en:{v_slug}-{slug}{tail}", names


def ingredient_doc(seed: int, index: int, counts: SampleCounts, when: datetime, *,
                   duplicate_off_id: bool = False) -> dict:
    """The index-th document of ``legrimoire.ingredients`` as import_off_ingredients.py or Beanie wrote it.

    The first ``ingredients - custom_ingredients`` come from the OpenFoodFacts import (one batch, one
    timestamp); the rest are custom ones added later through the admin UI. ``duplicate_off_id`` makes
    the second document reuse the first one's off_id (what a unique index must have prevented).
    """
    imported = counts.ingredients - counts.custom_ingredients
    rng = det_rng(seed, "ingredient", index)
    if index < imported:
        import_time = mongo_time(when - timedelta(days=412, hours=3, minutes=17))
        source = 0 if (duplicate_off_id and index == 1) else index
        off_id, names = _ingredient_identity(source)
        base = INGREDIENT_BASES[source % len(INGREDIENT_BASES)]
        doc: dict = {"_id": det_object_id(import_time, seed, "ingredients", index), "off_id": off_id, "names": names}
        parent_round = source // len(INGREDIENT_BASES)
        doc["parents"] = [f"en:{base[0]}"] if parent_round else []
        doc["children"] = ([f"en:{v[0]}-{base[0]}" for v in INGREDIENT_VARIANTS[:3]]
                           if parent_round == 0 and counts.ingredients > len(INGREDIENT_BASES) else [])
        doc["properties"] = {"vegan": base[5], "vegetarian": base[6]}
        doc["custom"] = False
        doc["created_at"] = import_time
        doc["updated_at"] = import_time
        if base[7]:
            doc["wikidata_id"] = base[7]
        if base[8]:
            doc["ciqual_food_code"] = base[8]
        if rng.random() < 0.05:
            doc["e_number"] = f"e{rng.randrange(100, 1600)}"
        return doc
    custom_index = index - imported
    fr, en = CUSTOM_INGREDIENTS[custom_index % len(CUSTOM_INGREDIENTS)]
    cycle = custom_index // len(CUSTOM_INGREDIENTS)
    if cycle:
        fr, en = f"{fr} {cycle + 1}", f"{en} {cycle + 1}"
    created = mongo_time(when - timedelta(days=300 * (1 - custom_index / max(counts.custom_ingredients, 1)) + 1,
                                          seconds=rng.randrange(86400)))
    slug = _slugify(fr)
    return {  # Beanie writes every model field, None included, in model order
        "_id": det_object_id(created, seed, "custom-ingredients", custom_index),
        "off_id": f"custom:{slug}", "names": {"fr": fr, "en": en}, "parents": [], "children": [],
        "properties": {}, "wikidata_id": None, "ciqual_food_code": None, "e_number": None, "custom": True,
        "created_at": created, "updated_at": created,
    }


INGREDIENT_EXPORT_FIELDS = ("off_id", "names", "parents", "children", "properties", "wikidata_id",
                            "ciqual_food_code", "e_number", "custom", "created_at", "updated_at")


def ingredient_export(doc: dict) -> dict:
    """``Ingredient.dict(exclude={'id'})``: every model field (None for absent), extra fields dropped."""
    return {name: doc.get(name) for name in INGREDIENT_EXPORT_FIELDS}


def category_doc(seed: int, index: int, counts: SampleCounts, when: datetime) -> dict:
    """The index-th document of ``legrimoire.categories`` as import_off_categories.py wrote it."""
    bases = len(CATEGORY_BASES)
    slug, en, fr, wikidata, agribalyse = CATEGORY_BASES[index % bases]
    round_ = index // bases
    import_time = mongo_time(when - timedelta(days=412, hours=3, minutes=9))
    if round_ == 0:
        off_id, names, parents = f"en:{slug}", {"en": en, "fr": fr}, ([] if index == 0 else ["en:plant-based-foods"]
                                                                    if slug in {"vegetables", "fruits", "legumes", "cereals"} else [])
    else:
        v_slug, v_en, v_fr = CATEGORY_VARIANTS[(round_ - 1) % len(CATEGORY_VARIANTS)]
        cycle = (round_ - 1) // len(CATEGORY_VARIANTS)
        tail = f"-{cycle + 1}" if cycle else ""
        off_id = f"en:{v_slug}-{slug}{tail}"
        names = {"en": f"{v_en} {en.lower()}{tail.replace('-', ' ')}", "fr": f"{fr} {v_fr}{tail.replace('-', ' ')}"}
        parents = [f"en:{slug}"]
    doc: dict = {
        "_id": det_object_id(import_time, seed, "categories", index), "off_id": off_id, "names": names,
        "parents": parents, "children": [], "icon": CATEGORY_ICONS.get(slug, "📦"),
        "created_at": import_time, "updated_at": import_time,
    }
    if wikidata and round_ == 0:
        doc["wikidata_id"] = wikidata
    if agribalyse and round_ == 0:
        doc["agribalyse_code"] = agribalyse
    return doc


@dataclass(frozen=True)
class RecipeFacts:
    """One recipe, as both databases know it (PostgreSQL was migrated to MongoDB, so they mirror)."""

    index: int
    pg_id: uuid.UUID
    title: str
    description: str
    ingredients: list[str]
    instructions: str
    servings: int
    prep_time: int
    cook_time: int
    category: str
    cuisine: str
    difficulty_level: str
    image_url: str | None
    is_public: bool
    equipment: list[str]
    created_at: datetime   # aware UTC, millisecond precision
    updated_at: datetime
    user_index: int
    temperature: int | None


_FRENCH_NAMES = MappingProxyType({slug: fr for slug, _en, fr, *_ in INGREDIENT_BASES})


def recipe_facts(seed: int, index: int, counts: SampleCounts, when: datetime) -> RecipeFacts:
    rng = det_rng(seed, "recipe", index)
    title, category, cuisine, difficulty, mains, equipment = DISHES[index % len(DISHES)]
    suffix = TITLE_SUFFIXES[(index // len(DISHES)) % len(TITLE_SUFFIXES)] if index >= len(DISHES) else ""
    names = _FRENCH_NAMES
    lines = []
    for slug in mains + tuple(rng.sample(("salt", "black-pepper", "thyme", "garlic", "parsley", "butter"), 2)):
        unit, amounts = UNITS[rng.randrange(len(UNITS))]
        name = names[slug].lower()
        article = "d'" if name[0] in "aeiouhéœ" else "de "
        lines.append(f"{rng.choice(amounts)} {unit} {article}{name}")
    oven = "Four" in equipment
    temperature = rng.choice((350, 375, 400, 425)) if oven else None
    steps = []
    for number in range(1, rng.randrange(4, 8) + 1):
        template = STEP_VERBS[0] if (number == 1 and oven) else rng.choice(STEP_VERBS[1:])
        steps.append(f"{number}. " + template.format(t=temperature or 350, i=names[rng.choice(mains)].lower(),
                                                   m=rng.choice((10, 15, 20, 30, 45, 60))))
    prep, cook = rng.choice((10, 15, 20, 25, 30, 45)), rng.choice((0, 15, 20, 30, 45, 60, 90, 120))
    # Recipes were added steadily over the last ~400 days, oldest first.
    span = timedelta(days=400)
    created = when - span + span * (index + rng.random() * 0.9) / max(counts.recipes, 1)
    created = min(created, when - timedelta(minutes=30))
    created = created.replace(microsecond=created.microsecond // 1000 * 1000)
    updated = min(created + timedelta(days=rng.choice((0, 0, 0, 1, 3, 12)), seconds=rng.randrange(3600)),
                  when - timedelta(minutes=5))
    updated = updated.replace(microsecond=updated.microsecond // 1000 * 1000)
    ext = counts.recipe_image_ext(index)
    image_url = f"/uploads/recipes/{det_uuid(seed, 'recipe-image', index)}.{ext}" if ext else None
    return RecipeFacts(
        index=index, pg_id=det_uuid(seed, "recipe", index), title=title + suffix,
        description=f"{title}{suffix.lower()} : une recette {cuisine.lower()} {rng.choice(('réconfortante', 'facile à réussir', 'de famille', 'de saison', 'parfaite pour recevoir'))}.",
        ingredients=lines, instructions="\n".join(steps), servings=rng.choice((2, 4, 4, 6, 8, 12)),
        prep_time=prep, cook_time=cook, category=category, cuisine=cuisine, difficulty_level=difficulty,
        image_url=image_url, is_public=rng.random() < 0.85, equipment=list(equipment),
        created_at=created, updated_at=updated, user_index=rng.randrange(max(counts.users, 1)),
        temperature=temperature,
    )


def recipe_doc(seed: int, facts: RecipeFacts) -> dict:
    """``legrimoire.recipes`` document as Beanie's Recipe model inserts it."""
    created = mongo_time(facts.created_at)
    return {
        "_id": det_object_id(created, seed, "recipes", facts.index), "title": facts.title,
        "description": facts.description, "ingredients": facts.ingredients, "instructions": facts.instructions,
        "servings": facts.servings, "prep_time": facts.prep_time, "cook_time": facts.cook_time,
        "total_time": facts.prep_time + facts.cook_time, "category": facts.category, "cuisine": facts.cuisine,
        "image_url": facts.image_url, "is_public": facts.is_public, "equipment": facts.equipment,
        "created_at": created, "updated_at": mongo_time(facts.updated_at),
    }


def recipe_export(doc: dict) -> dict:
    """``Recipe.dict(exclude={'id'})`` (extra fields allowed, so everything but _id)."""
    return {key: value for key, value in doc.items() if key != "_id"}


def system_version_docs() -> list[dict]:
    """``admin.system.version`` on a mongo:7.0 server that has users."""
    return [{"_id": "featureCompatibilityVersion", "version": "7.0"}, {"_id": "authSchema", "currentVersion": 5}]


# --- PostgreSQL rows (le_grimoire) --------------------------------------------------------------

def user_row(seed: int, index: int, when: datetime) -> tuple:
    """users row: (id, email, name, avatar_url, oauth_provider, oauth_provider_id, created_at, updated_at,
    username, password_hash, role, is_active)."""
    rng = det_rng(seed, "user", index)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    username = f"{_slugify(first)}.{_slugify(last)}{index}"
    oauth = index % 3 != 0
    created = when - timedelta(days=500 - 480 * index / max(index + 5, 1), seconds=rng.randrange(86400))
    role = "admin" if index == 0 else ("collaborator" if index % 4 == 1 else "reader")
    password_hash = None if oauth else "$2b$12$" + hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()[:53]
    return (det_uuid(seed, "user", index), f"{username}@{rng.choice(MAIL_DOMAINS)}", f"{first} {last}",
            f"https://lh3.googleusercontent.com/a/{seed_digest(seed, 'avatar', index).hex()}" if oauth else None,
            "google" if oauth else None, str(rng.randrange(10**20, 10**21)) if oauth else None,
            created, created + timedelta(days=rng.randrange(30)), username, password_hash, role,
            rng.random() < 0.95)


USER_COLUMNS = ("id", "email", "name", "avatar_url", "oauth_provider", "oauth_provider_id", "created_at",
                "updated_at", "username", "password_hash", "role", "is_active")

RECIPE_COLUMNS = ("id", "title", "description", "ingredients", "instructions", "servings", "prep_time", "cook_time",
                  "total_time", "category", "cuisine", "image_url", "original_image_url", "source", "user_id",
                  "is_public", "created_at", "updated_at", "difficulty_level", "temperature", "temperature_unit",
                  "notes", "equipment")


def recipe_row(seed: int, facts: RecipeFacts) -> tuple:
    return (facts.pg_id, facts.title, facts.description, facts.ingredients, facts.instructions, facts.servings,
            facts.prep_time, facts.cook_time, facts.prep_time + facts.cook_time, facts.category, facts.cuisine,
            facts.image_url, None, "Le Grimoire", det_uuid(seed, "user", facts.user_index), facts.is_public,
            facts.created_at, facts.updated_at, facts.difficulty_level, facts.temperature,
            "F" if facts.temperature else None, None, facts.equipment)


TAGS = ("réconfort", "végétarien", "rapide", "famille", "temps des sucres", "hiver", "été", "sans gluten",
        "brunch", "BBQ", "Noël", "lunch", "économique", "mijoteuse")
TAG_COLUMNS = ("id", "recipe_id", "tag", "created_at")


def recipe_tag_rows(seed: int, facts: RecipeFacts) -> list[tuple]:
    rng = det_rng(seed, "tags", facts.index)
    return [(det_uuid(seed, f"tag:{facts.index}", k), facts.pg_id, tag, facts.created_at)
            for k, tag in enumerate(rng.sample(TAGS, rng.randrange(0, 4)))]


STORE_COLUMNS = ("id", "name", "code", "website_url", "created_at")
SPECIAL_COLUMNS = ("id", "store_id", "product_name", "product_category", "original_price", "special_price",
                   "discount_percentage", "unit", "description", "image_url", "valid_from", "valid_until",
                   "scraped_at", "created_at", "updated_at")


def store_rows(seed: int, when: datetime) -> list[tuple]:
    installed = when - timedelta(days=430)
    return [(det_uuid(seed, "store", k), name, code, url, installed) for k, (name, code, url) in enumerate(GROCERY_STORES)]


def special_row(seed: int, index: int, when: datetime) -> tuple:
    rng = det_rng(seed, "special", index)
    product, category, unit = SPECIAL_PRODUCTS[index % len(SPECIAL_PRODUCTS)]
    original = Decimal(rng.randrange(199, 2999)) / 100
    discount = Decimal(rng.choice((10, 15, 20, 25, 30, 40)))
    special = (original * (100 - discount) / 100).quantize(Decimal("0.01"))
    week_start = (when - timedelta(days=(when.weekday() - 3) % 7)).date()   # flyers start on Thursday
    scraped = when - timedelta(days=(when.weekday() - 3) % 7, hours=rng.randrange(1, 6))
    store = index % len(GROCERY_STORES)
    return (det_uuid(seed, "special", index), det_uuid(seed, "store", store), product, category, original, special,
            discount, unit, f"Circulaire de la semaine — {product.lower()}",
            f"https://product-images.{GROCERY_STORES[store][1]}.ca/{seed_digest(seed, 'special-img', index).hex()[:12]}.jpg",
            week_start, week_start + timedelta(days=6), scraped, scraped, scraped)


LIST_COLUMNS = ("id", "user_id", "name", "created_at", "updated_at")
ITEM_COLUMNS = ("id", "shopping_list_id", "recipe_id", "ingredient_name", "quantity", "unit", "is_purchased",
                "matched_special_id", "notes", "created_at", "updated_at", "ingredient_off_id")


def shopping_list_row(seed: int, index: int, counts: SampleCounts, when: datetime) -> tuple:
    rng = det_rng(seed, "list", index)
    created = when - timedelta(days=rng.randrange(1, 60), seconds=rng.randrange(86400))
    name = rng.choice(("Épicerie de la semaine", "Souper de dimanche", "Party de Noël", "Lunchs", "Costco"))
    return (det_uuid(seed, "list", index), det_uuid(seed, "user", index % counts.users), name, created,
            created + timedelta(hours=rng.randrange(48)))


def shopping_item_rows(seed: int, list_index: int, counts: SampleCounts, when: datetime) -> list[tuple]:
    rng = det_rng(seed, "items", list_index)
    created = when - timedelta(days=rng.randrange(1, 30))
    rows = []
    for k in range(counts.items_per_list):
        base = INGREDIENT_BASES[rng.randrange(len(INGREDIENT_BASES))]
        recipe = rng.randrange(counts.recipes)
        special = rng.randrange(counts.grocery_specials) if rng.random() < 0.3 else None
        rows.append((det_uuid(seed, f"item:{list_index}", k), det_uuid(seed, "list", list_index),
                     det_uuid(seed, "recipe", recipe), base[2], Decimal(rng.randrange(1, 8)) / 2,
                     rng.choice(("unit", "kg", "lb", "l", "tasse")), rng.random() < 0.4,
                     det_uuid(seed, "special", special) if special is not None else None, None, created, created,
                     f"en:{base[0]}"))
    return rows


FAVORITE_COLUMNS = ("id", "user_id", "recipe_id", "created_at")


def favorite_rows(seed: int, user_index: int, counts: SampleCounts, when: datetime) -> list[tuple]:
    """A few favourites per user; (user, recipe) stays unique because 7*k < recipes for every k used."""
    rng = det_rng(seed, "favorites", user_index)
    wanted = min(counts.favorites_per_user, max((counts.recipes - 1) // 7, 0) + 1, counts.recipes)
    return [(det_uuid(seed, f"favorite:{user_index}", k), det_uuid(seed, "user", user_index),
             det_uuid(seed, "recipe", (user_index + 7 * k) % counts.recipes),
             when - timedelta(days=rng.randrange(1, 200), seconds=rng.randrange(86400)))
            for k in range(wanted)]


OCR_COLUMNS = ("id", "user_id", "image_path", "status", "extracted_text", "parsed_recipe_id", "error_message",
               "created_at", "updated_at")


def ocr_job_row(seed: int, index: int, counts: SampleCounts, when: datetime) -> tuple:
    rng = det_rng(seed, "ocr", index)
    status = rng.choice(("completed", "completed", "completed", "failed", "pending"))
    created = when - timedelta(days=rng.randrange(1, 300), seconds=rng.randrange(86400))
    recipe = rng.randrange(counts.recipes)
    return (det_uuid(seed, "ocr", index), det_uuid(seed, "user", index % counts.users),
            f"/app/uploads/ocr/{det_uuid(seed, 'ocr-image', index)}.jpg", status,
            "INGRÉDIENTS\n2 tasses de farine\n1 c. à thé de sel\n..." if status == "completed" else None,
            det_uuid(seed, "recipe", recipe) if status == "completed" else None,
            "Tesseract: image trop floue" if status == "failed" else None, created, created + timedelta(seconds=rng.randrange(5, 90)))


def other_upload_names(seed: int, counts: SampleCounts) -> list[str]:
    """Uploads that no recipe references: AI-extraction photos and wine labels (paths under uploads/)."""
    names = []
    for k in range(counts.other_uploads):
        if k % 2 == 0:
            names.append(f"{det_uuid(seed, 'ai-upload', k)}_recette_{k}.jpg")
        else:
            names.append(f"wines/wine_{seed_digest(seed, 'wine', k).hex()[:24]}_{det_uuid(seed, 'wine-upload', k)}.jpg")
    return names


# --- helpers ------------------------------------------------------------------------------------

_ASCII = str.maketrans("àâäéèêëîïôöùûüçœæÀÂÉÈÊÎÔÙÛÇŒ' ", "aaaeeeeiioouuucoaAAEEEIOUUCO--")


def _slugify(text: str) -> str:
    return "".join(ch for ch in text.translate(_ASCII).lower() if ch.isalnum() or ch == "-").strip("-")

