"""What Le Grimoire's production databases hold, generated deterministically and one record at a time.

Facts from sparck75/le-grimoire: the Beanie models (backend/app/models/mongodb/), the OpenFoodFacts
import scripts (backend/scripts/import_off_*.py), database/init.sql and the Alembic migrations.
Every record is a pure function of ``(seed, index)``, so a collection of any size streams without
being held in memory, PostgreSQL and MongoDB can mirror the same recipes, and the same seed gives
the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType

from bson import ObjectId

# --- identities -------------------------------------------------------------------------------

def _digest(seed: int, kind: str, index: int) -> bytes:
    return hashlib.blake2b(f"{seed}:{kind}:{index}".encode(), digest_size=16).digest()


def det_rng(seed: int, kind: str, index: int) -> random.Random:
    """A private random stream for one record: records can be made in any order, any number of times."""
    return random.Random(int.from_bytes(_digest(seed, kind, index), "big"))


def det_uuid(seed: int, kind: str, index: int) -> uuid.UUID:
    """A version-4 UUID as uuid_generate_v4() / uuid.uuid4() would give, but reproducible."""
    return uuid.UUID(bytes=_digest(seed, kind, index), version=4)


def det_object_id(moment: datetime, seed: int, kind: str, index: int) -> ObjectId:
    """An ObjectId shaped like a driver's: creation second, per-process random, counter."""
    process = _digest(seed, f"process:{kind}", 0)
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


# --- vocabulary -------------------------------------------------------------------------------

# (OpenFoodFacts id slug, en, fr, es, de, vegan, vegetarian, wikidata, ciqual)
INGREDIENT_BASES: tuple[tuple[str, str, str, str, str, str, str, str | None, str | None], ...] = (
    ("tomato", "Tomato", "Tomate", "Tomate", "Tomate", "yes", "yes", "Q23501", "20047"),
    ("garlic", "Garlic", "Ail", "Ajo", "Knoblauch", "yes", "yes", "Q21546392", "11000"),
    ("onion", "Onion", "Oignon", "Cebolla", "Zwiebel", "yes", "yes", "Q23485", "20034"),
    ("carrot", "Carrot", "Carotte", "Zanahoria", "Karotte", "yes", "yes", "Q81", "20009"),
    ("potato", "Potato", "Pomme de terre", "Patata", "Kartoffel", "yes", "yes", "Q16587531", "4003"),
    ("olive-oil", "Olive oil", "Huile d'olive", "Aceite de oliva", "Olivenöl", "yes", "yes", "Q93165", "17270"),
    ("butter", "Butter", "Beurre", "Mantequilla", "Butter", "no", "yes", "Q34172", "16400"),
    ("wheat-flour", "Wheat flour", "Farine de blé", "Harina de trigo", "Weizenmehl", "yes", "yes", "Q12183", "9410"),
    ("sugar", "Sugar", "Sucre", "Azúcar", "Zucker", "yes", "yes", "Q11002", "31016"),
    ("brown-sugar", "Brown sugar", "Cassonade", "Azúcar moreno", "Brauner Zucker", "yes", "yes", "Q1094134", "31008"),
    ("maple-syrup", "Maple syrup", "Sirop d'érable", "Jarabe de arce", "Ahornsirup", "yes", "yes", "Q208817", "31017"),
    ("egg", "Egg", "Œuf", "Huevo", "Ei", "no", "yes", "Q93189", "22000"),
    ("milk", "Milk", "Lait", "Leche", "Milch", "no", "yes", "Q8495", "19024"),
    ("cream", "Cream", "Crème", "Nata", "Sahne", "no", "yes", "Q13228", "19402"),
    ("cheddar", "Cheddar", "Cheddar", "Queso cheddar", "Cheddar", "no", "yes", "Q192334", "12110"),
    ("cheese-curds", "Cheese curds", "Fromage en grains", "Cuajada de queso", "Käsebruch", "no", "yes", "Q1133712", None),
    ("parmigiano-reggiano", "Parmigiano Reggiano", "Parmesan", "Parmesano", "Parmesan", "no", "yes", "Q155761", "12120"),
    ("chicken", "Chicken", "Poulet", "Pollo", "Hähnchen", "no", "no", "Q864693", "36018"),
    ("beef", "Beef", "Bœuf", "Carne de vacuno", "Rindfleisch", "no", "no", "Q192628", "6251"),
    ("pork", "Pork", "Porc", "Cerdo", "Schweinefleisch", "no", "no", "Q191768", "28002"),
    ("ham", "Ham", "Jambon", "Jamón", "Schinken", "no", "no", "Q170486", "28900"),
    ("bacon", "Bacon", "Bacon", "Panceta", "Speck", "no", "no", "Q11105", "28100"),
    ("salmon", "Salmon", "Saumon", "Salmón", "Lachs", "no", "no", "Q937", "26036"),
    ("shrimp", "Shrimp", "Crevette", "Camarón", "Garnele", "no", "no", "Q1947920", "10001"),
    ("rice", "Rice", "Riz", "Arroz", "Reis", "yes", "yes", "Q5090", "9100"),
    ("pasta", "Pasta", "Pâtes", "Pasta", "Nudeln", "yes", "yes", "Q178", "9811"),
    ("lentil", "Lentil", "Lentille", "Lenteja", "Linse", "yes", "yes", "Q131226", "20503"),
    ("chickpea", "Chickpea", "Pois chiche", "Garbanzo", "Kichererbse", "yes", "yes", "Q81375", "20507"),
    ("yellow-pea", "Yellow pea", "Pois jaune", "Guisante amarillo", "Gelbe Erbse", "yes", "yes", None, "20511"),
    ("white-bean", "White bean", "Haricot blanc", "Alubia blanca", "Weiße Bohne", "yes", "yes", "Q1232236", "20502"),
    ("mushroom", "Mushroom", "Champignon", "Champiñón", "Pilz", "yes", "yes", "Q654236", "20010"),
    ("leek", "Leek", "Poireau", "Puerro", "Lauch", "yes", "yes", "Q148995", "20030"),
    ("celery", "Celery", "Céleri", "Apio", "Sellerie", "yes", "yes", "Q28298", "20068"),
    ("zucchini", "Zucchini", "Courgette", "Calabacín", "Zucchini", "yes", "yes", "Q7533", "20020"),
    ("eggplant", "Eggplant", "Aubergine", "Berenjena", "Aubergine", "yes", "yes", "Q7540", "20000"),
    ("bell-pepper", "Bell pepper", "Poivron", "Pimiento", "Paprika", "yes", "yes", "Q1548030", "20087"),
    ("spinach", "Spinach", "Épinard", "Espinaca", "Spinat", "yes", "yes", "Q81464", "20063"),
    ("lettuce", "Lettuce", "Laitue", "Lechuga", "Salat", "yes", "yes", "Q83193", "20031"),
    ("apple", "Apple", "Pomme", "Manzana", "Apfel", "yes", "yes", "Q89", "13039"),
    ("blueberry", "Blueberry", "Bleuet", "Arándano", "Heidelbeere", "yes", "yes", "Q13178", "13004"),
    ("strawberry", "Strawberry", "Fraise", "Fresa", "Erdbeere", "yes", "yes", "Q745", "13014"),
    ("banana", "Banana", "Banane", "Plátano", "Banane", "yes", "yes", "Q503", "13005"),
    ("lemon", "Lemon", "Citron", "Limón", "Zitrone", "yes", "yes", "Q1093742", "13010"),
    ("dark-chocolate", "Dark chocolate", "Chocolat noir", "Chocolate negro", "Zartbitterschokolade", "yes", "yes", "Q1325977", "31000"),
    ("vanilla", "Vanilla", "Vanille", "Vainilla", "Vanille", "yes", "yes", "Q162843", "11040"),
    ("cinnamon", "Cinnamon", "Cannelle", "Canela", "Zimt", "yes", "yes", "Q28165", "11024"),
    ("thyme", "Thyme", "Thym", "Tomillo", "Thymian", "yes", "yes", "Q3215980", "11052"),
    ("basil", "Basil", "Basilic", "Albahaca", "Basilikum", "yes", "yes", "Q38859", "11002"),
    ("parsley", "Parsley", "Persil", "Perejil", "Petersilie", "yes", "yes", "Q25284", "11039"),
    ("black-pepper", "Black pepper", "Poivre noir", "Pimienta negra", "Schwarzer Pfeffer", "yes", "yes", "Q311426", "11015"),
    ("salt", "Salt", "Sel", "Sal", "Salz", "yes", "yes", "Q11254", "11058"),
    ("dijon-mustard", "Dijon mustard", "Moutarde de Dijon", "Mostaza de Dijon", "Dijon-Senf", "yes", "yes", "Q1136627", "11013"),
    ("red-wine", "Red wine", "Vin rouge", "Vino tinto", "Rotwein", "maybe", "maybe", "Q1827", "5214"),
    ("chicken-broth", "Chicken broth", "Bouillon de poulet", "Caldo de pollo", "Hühnerbrühe", "no", "no", None, "25904"),
    ("baking-powder", "Baking powder", "Poudre à pâte", "Polvo de hornear", "Backpulver", "yes", "yes", "Q692099", "11071"),
)

# (slug prefix, en prefix, fr suffix) — invariant French so no gender agreement is needed.
INGREDIENT_VARIANTS: tuple[tuple[str, str, str], ...] = (
    ("organic", "Organic", "bio"),
    ("canned", "Canned", "en conserve"),
    ("quebec", "Quebec", "du Québec"),
    ("diced", "Diced", "en dés"),
    ("powdered", "Powdered", "en poudre"),
    ("pureed", "Pureed", "en purée"),
    ("unsalted", "Unsalted", "sans sel"),
    ("seasonal", "Seasonal", "de saison"),
    ("flaked", "Flaked", "en flocons"),
    ("local", "Local", "du marché"),
)

CUSTOM_INGREDIENTS: tuple[tuple[str, str], ...] = (
    ("Épices à steak de Montréal", "Montreal steak spice"),
    ("Sauce brune HP", "HP brown sauce"),
    ("Cretons maison", "Homemade cretons"),
    ("Fromage Oka", "Oka cheese"),
    ("Têtes de violon", "Fiddleheads"),
    ("Sirop de poteau", "Table syrup"),
    ("Ketchup aux fruits", "Fruit ketchup"),
    ("Gourganes", "Broad beans (gourganes)"),
    ("Bière rousse de microbrasserie", "Craft red ale"),
    ("Beurre d'érable", "Maple butter"),
)

# (off slug, en, fr, icon parent, wikidata, agribalyse)
CATEGORY_BASES: tuple[tuple[str, str, str, str | None, str | None], ...] = (
    ("plant-based-foods", "Plant-based foods", "Aliments d'origine végétale", "Q16587531", None),
    ("vegetables", "Vegetables", "Légumes", "Q11004", None),
    ("fruits", "Fruits", "Fruits", "Q1364", None),
    ("legumes", "Legumes", "Légumineuses", "Q145909", None),
    ("cereals", "Cereals", "Céréales", "Q12117", None),
    ("dairy", "Dairy", "Produits laitiers", "Q185217", None),
    ("cheeses", "Cheeses", "Fromages", "Q10943", None),
    ("meats", "Meats", "Viandes", "Q10990", None),
    ("poultry", "Poultry", "Volailles", "Q206904", None),
    ("fish", "Fish", "Poissons", "Q600396", None),
    ("seafood", "Seafood", "Produits de la mer", "Q192935", None),
    ("breads", "Breads", "Pains", "Q7802", None),
    ("pastries", "Pastries", "Viennoiseries", "Q1503617", None),
    ("desserts", "Desserts", "Desserts", "Q182940", None),
    ("soups", "Soups", "Soupes", "Q41415", "25958"),
    ("salads", "Salads", "Salades", "Q9266", None),
    ("sauces", "Sauces", "Sauces", "Q178359", None),
    ("condiments", "Condiments", "Condiments", "Q2596997", None),
    ("spreads", "Spreads", "Produits à tartiner", "Q1201883", None),
    ("spices", "Spices", "Épices", "Q42527", None),
    ("herbs", "Herbs", "Herbes aromatiques", "Q207123", None),
    ("sweeteners", "Sweeteners", "Édulcorants", "Q4368298", None),
    ("chocolates", "Chocolates", "Chocolats", "Q195", None),
    ("breakfast", "Breakfast", "Petit-déjeuners", "Q80973", None),
    ("meals", "Meals", "Plats préparés", "Q8148", None),
)

CATEGORY_ICONS = {
    "plant-based-foods": "🌱", "vegetables": "🥬", "fruits": "🍎", "legumes": "🫘", "cereals": "🌾",
    "dairy": "🥛", "cheeses": "🧀", "meats": "🍖", "poultry": "🍗", "fish": "🐟", "seafood": "🦐",
    "breads": "🍞", "pastries": "🥐", "desserts": "🍰", "soups": "🍲", "salads": "🥗", "sauces": "🥫",
    "condiments": "🧂", "spreads": "🍯", "spices": "🌶️", "herbs": "🌿", "sweeteners": "🍯",
    "chocolates": "🍫", "breakfast": "🥞", "meals": "🍽️",
}

CATEGORY_VARIANTS: tuple[tuple[str, str, str], ...] = (
    ("frozen", "Frozen", "surgelés"),
    ("organic", "Organic", "bio"),
    ("canadian", "Canadian", "du Canada"),
    ("french", "French", "de France"),
    ("homemade", "Homemade", "maison"),
)

# (title, category, cuisine, difficulty, main ingredient slugs, equipment)
DISHES: tuple[tuple[str, str, str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Pâté chinois", "Plat principal", "Québécoise", "Facile", ("beef", "potato", "onion", "butter"), ("Four", "Plat à gratin")),
    ("Tourtière du Lac-Saint-Jean", "Plat principal", "Québécoise", "Difficile", ("pork", "beef", "potato", "onion"), ("Four", "Cocotte")),
    ("Soupe aux pois", "Soupe", "Québécoise", "Facile", ("yellow-pea", "ham", "onion", "carrot"), ("Chaudron",)),
    ("Pouding chômeur", "Dessert", "Québécoise", "Facile", ("wheat-flour", "brown-sugar", "maple-syrup", "butter"), ("Four", "Plat à gratin")),
    ("Tarte au sucre", "Dessert", "Québécoise", "Moyen", ("brown-sugar", "cream", "butter", "wheat-flour"), ("Four", "Moule à tarte")),
    ("Poutine classique", "Plat principal", "Québécoise", "Moyen", ("potato", "cheese-curds", "chicken-broth"), ("Friteuse", "Casserole")),
    ("Fèves au lard", "Accompagnement", "Québécoise", "Facile", ("white-bean", "bacon", "maple-syrup", "onion"), ("Four", "Cocotte")),
    ("Ratatouille", "Plat principal", "Française", "Moyen", ("eggplant", "zucchini", "tomato", "bell-pepper"), ("Poêle", "Cocotte")),
    ("Bœuf bourguignon", "Plat principal", "Française", "Difficile", ("beef", "red-wine", "mushroom", "carrot"), ("Cocotte",)),
    ("Quiche lorraine", "Plat principal", "Française", "Moyen", ("egg", "cream", "bacon", "wheat-flour"), ("Four", "Moule à tarte")),
    ("Crêpes bretonnes", "Déjeuner", "Française", "Facile", ("wheat-flour", "egg", "milk", "butter"), ("Poêle à crêpes", "Fouet")),
    ("Gratin dauphinois", "Accompagnement", "Française", "Facile", ("potato", "cream", "garlic", "milk"), ("Four", "Plat à gratin")),
    ("Coq au vin", "Plat principal", "Française", "Difficile", ("chicken", "red-wine", "mushroom", "bacon"), ("Cocotte",)),
    ("Soupe à l'oignon gratinée", "Soupe", "Française", "Moyen", ("onion", "butter", "chicken-broth", "parmigiano-reggiano"), ("Chaudron", "Bols allant au four")),
    ("Salade niçoise", "Salade", "Française", "Facile", ("lettuce", "tomato", "egg", "olive-oil"), ("Saladier",)),
    ("Mousse au chocolat", "Dessert", "Française", "Moyen", ("dark-chocolate", "egg", "sugar"), ("Batteur électrique", "Bol à mélanger")),
    ("Tarte Tatin", "Dessert", "Française", "Difficile", ("apple", "butter", "sugar", "wheat-flour"), ("Poêle allant au four",)),
    ("Risotto aux champignons", "Plat principal", "Italienne", "Moyen", ("rice", "mushroom", "parmigiano-reggiano", "chicken-broth"), ("Sauteuse",)),
    ("Lasagne à la viande", "Plat principal", "Italienne", "Moyen", ("pasta", "beef", "tomato", "parmigiano-reggiano"), ("Four", "Plat à lasagne")),
    ("Pâtes au pesto", "Plat principal", "Italienne", "Facile", ("pasta", "basil", "olive-oil", "garlic"), ("Chaudron", "Robot culinaire")),
    ("Chili con carne", "Plat principal", "Mexicaine", "Facile", ("beef", "white-bean", "tomato", "bell-pepper"), ("Cocotte",)),
    ("Dal aux lentilles", "Plat principal", "Indienne", "Facile", ("lentil", "onion", "tomato", "garlic"), ("Casserole",)),
    ("Houmous", "Entrée", "Libanaise", "Facile", ("chickpea", "lemon", "garlic", "olive-oil"), ("Robot culinaire",)),
    ("Saumon à l'érable", "Plat principal", "Québécoise", "Facile", ("salmon", "maple-syrup", "dijon-mustard"), ("Four", "Plaque de cuisson")),
    ("Crevettes à l'ail", "Entrée", "Espagnole", "Facile", ("shrimp", "garlic", "olive-oil", "parsley"), ("Poêle",)),
    ("Pain aux bananes", "Dessert", "Américaine", "Facile", ("banana", "wheat-flour", "sugar", "egg"), ("Four", "Moule à pain")),
    ("Muffins aux bleuets", "Déjeuner", "Québécoise", "Facile", ("blueberry", "wheat-flour", "sugar", "baking-powder"), ("Four", "Moule à muffins")),
    ("Potage aux poireaux", "Soupe", "Française", "Facile", ("leek", "potato", "cream", "chicken-broth"), ("Chaudron", "Mélangeur plongeant")),
    ("Poulet au beurre", "Plat principal", "Indienne", "Moyen", ("chicken", "butter", "tomato", "cream"), ("Cocotte",)),
    ("Shortcake aux fraises", "Dessert", "Américaine", "Moyen", ("strawberry", "cream", "wheat-flour", "sugar"), ("Four", "Batteur électrique")),
)

TITLE_SUFFIXES: tuple[str, ...] = (
    "", "", "", " de grand-maman", " express", " de Mamie Jeanne", " du dimanche", " (version légère)",
    " à la mijoteuse", " au four", " comme au resto", " de ma tante Lise",
)

UNITS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tasse", ("1/4", "1/2", "1", "2", "3/4")),
    ("c. à soupe", ("1", "2", "3")),
    ("c. à thé", ("1/2", "1", "2")),
    ("g", ("100", "250", "500", "750")),
    ("ml", ("125", "250", "500")),
    ("lb", ("1", "2")),
)

STEP_VERBS: tuple[str, ...] = (
    "Préchauffer le four à {t}°F.", "Émincer {i}.", "Faire revenir {i} dans le beurre 5 minutes.",
    "Ajouter {i} et bien mélanger.", "Assaisonner de sel et de poivre.", "Laisser mijoter {m} minutes à feu doux.",
    "Cuire au four {m} minutes, jusqu'à ce que le dessus soit doré.", "Incorporer {i} délicatement.",
    "Laisser reposer 10 minutes avant de servir.", "Réserver au frais jusqu'au moment de servir.",
)

FIRST_NAMES = ("Marie", "Jean", "Sophie", "Luc", "Julie", "Marc", "Isabelle", "François", "Catherine", "Pierre",
               "Nathalie", "Éric", "Geneviève", "Mathieu", "Chantal", "Olivier", "Émilie", "Simon", "Valérie", "Alexandre")
LAST_NAMES = ("Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin", "Gagné",
              "Ouellet", "Pelletier", "Bélanger", "Lévesque", "Bergeron", "Leblanc", "Paquette", "Girard", "Simard", "Boucher")
MAIL_DOMAINS = ("gmail.com", "videotron.ca", "hotmail.com", "outlook.com", "icloud.com", "bell.net")

SPECIAL_PRODUCTS: tuple[tuple[str, str, str], ...] = (
    ("Poitrines de poulet désossées", "Viandes", "kg"), ("Bœuf haché mi-maigre", "Viandes", "kg"),
    ("Filets de saumon de l'Atlantique", "Poissons", "kg"), ("Pommes de terre jaunes 10 lb", "Fruits et légumes", "unit"),
    ("Fraises du Québec 1 L", "Fruits et légumes", "unit"), ("Fromage cheddar fort 400 g", "Produits laitiers", "unit"),
    ("Beurre salé 454 g", "Produits laitiers", "unit"), ("Pâtes spaghetti 900 g", "Épicerie", "unit"),
    ("Sirop d'érable pur 540 ml", "Épicerie", "unit"), ("Tomates en dés 796 ml", "Épicerie", "unit"),
    ("Pain tranché de blé entier", "Boulangerie", "unit"), ("Bananes", "Fruits et légumes", "lb"),
    ("Lait 2 % 4 L", "Produits laitiers", "unit"), ("Œufs gros calibre 12", "Produits laitiers", "unit"),
)

GROCERY_STORES = (("IGA", "iga", "https://www.iga.net"), ("Metro", "metro", "https://www.metro.ca"))


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
RECIPE_EXPORT_FIELDS = ("title", "description", "ingredients", "instructions", "servings", "prep_time",
                        "cook_time", "total_time", "category", "cuisine", "image_url", "is_public",
                        "equipment", "created_at", "updated_at")


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
            f"https://lh3.googleusercontent.com/a/{_digest(seed, 'avatar', index).hex()}" if oauth else None,
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
            f"https://product-images.{GROCERY_STORES[store][1]}.ca/{_digest(seed, 'special-img', index).hex()[:12]}.jpg",
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


# --- uploads ------------------------------------------------------------------------------------

# How many distinct pictures per format a sample renders. Every upload is one of them plus a comment
# that makes its bytes unique, so uploads cost file I/O instead of Pillow time at any scale.
PHOTO_POOL_SIZE = 64


def photo_bytes(seed: int, kind: str, index: int, fmt: str) -> bytes:
    """One upload: a pooled picture carrying a comment unique to ``(seed, kind, index)``.

    A pure function of its arguments; PhotoPool gives the same bytes without re-rendering."""
    return PhotoPool(seed).photo(kind, index, fmt)


class PhotoPool:
    """Renders each pooled picture at most once, for one sample (one seed); hands out unique uploads.

    Which picture an upload shows depends only on ``(seed, kind, index)``, so the bytes do not depend
    on the order uploads are asked for, or on which pool made them."""

    def __init__(self, seed: int, size: int = PHOTO_POOL_SIZE):
        if size < 1:
            raise ValueError(f"a photo pool needs at least one picture, got {size}")
        self._seed = seed
        self._size = size
        self._rendered: dict[tuple[str, int], bytes] = {}

    def photo(self, kind: str, index: int, fmt: str) -> bytes:
        if fmt not in ("jpg", "png"):
            raise ValueError(f"photos are jpg or png, got {fmt!r}")
        slot = int.from_bytes(_digest(self._seed, f"photo-slot:{kind}", index)[:8], "big") % self._size
        picture = self._rendered.get((fmt, slot))
        if picture is None:
            picture = self._rendered[(fmt, slot)] = render_photo(self._seed, fmt, slot)
        comment = f"Le Grimoire upload {det_uuid(self._seed, f'photo:{kind}', index)}"
        return with_comment(picture, fmt, comment)


def render_photo(seed: int, fmt: str, slot: int) -> bytes:
    """A real, decodable food-ish photo: soft coloured blobs on a plate-like background, with grain.

    Grain keeps JPEGs at a realistic ~25 KB (flat images would compress to nothing). The blur runs on
    the 1/8-size sketch (radius 3/8 there is radius 3 at full size), before the bicubic upscale."""
    from PIL import Image, ImageDraw, ImageFilter  # heavy import, only when images are made

    rng = det_rng(seed, f"photo:{fmt}", slot)
    width, height = (480, 360) if fmt == "jpg" else (320, 240)
    small = Image.new("RGB", (width // 8, height // 8), tuple(rng.randrange(150, 235) for _ in range(3)))
    draw = ImageDraw.Draw(small)
    for _ in range(12):
        x, y, r = rng.randrange(width // 8), rng.randrange(height // 8), rng.randrange(3, 18)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(30, 250) for _ in range(3)))
    image = small.filter(ImageFilter.GaussianBlur(3 / 8)).resize((width, height), Image.BICUBIC)
    grain = Image.frombytes("L", (width, height), rng.randbytes(width * height))
    image = Image.blend(image, Image.merge("RGB", (grain, grain, grain)), 0.06)
    out = io.BytesIO()
    if fmt == "png":
        image.quantize(64).save(out, "PNG")
    else:
        image.save(out, "JPEG", quality=82)
    return out.getvalue()


_JPEG_SOI, _JPEG_APP0, _JPEG_COM = b"\xff\xd8", b"\xff\xe0", b"\xff\xfe"
_PNG_IEND = struct.pack(">I4sI", 0, b"IEND", zlib.crc32(b"IEND"))


def with_comment(picture: bytes, fmt: str, comment: str) -> bytes:
    """The same picture with a text comment: a JPEG COM segment after SOI/JFIF, a PNG tEXt before IEND.

    Both are metadata every decoder skips, so the file still decodes to the same pixels."""
    text = comment.encode("latin-1")
    if fmt == "jpg":
        if picture[:2] != _JPEG_SOI:
            raise ValueError("not a JPEG: no SOI marker")
        at = 2
        if picture[2:4] == _JPEG_APP0:   # JFIF wants its APP0 right after SOI
            at = 4 + int.from_bytes(picture[4:6], "big")
        return picture[:at] + _JPEG_COM + (len(text) + 2).to_bytes(2, "big") + text + picture[at:]
    if not picture.endswith(_PNG_IEND):
        raise ValueError("not a PNG: it does not end with IEND")
    body = b"Comment\x00" + text
    chunk = struct.pack(">I4s", len(body), b"tEXt") + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return picture[:-len(_PNG_IEND)] + chunk + _PNG_IEND


def other_upload_names(seed: int, counts: SampleCounts) -> list[str]:
    """Uploads that no recipe references: AI-extraction photos and wine labels (paths under uploads/)."""
    names = []
    for k in range(counts.other_uploads):
        if k % 2 == 0:
            names.append(f"{det_uuid(seed, 'ai-upload', k)}_recette_{k}.jpg")
        else:
            names.append(f"wines/wine_{_digest(seed, 'wine', k).hex()[:24]}_{det_uuid(seed, 'wine-upload', k)}.jpg")
    return names


# --- helpers ------------------------------------------------------------------------------------

_ASCII = str.maketrans("àâäéèêëîïôöùûüçœæÀÂÉÈÊÎÔÙÛÇŒ' ", "aaaeeeeiioouuucoaAAEEEIOUUCO--")


def _slugify(text: str) -> str:
    return "".join(ch for ch in text.translate(_ASCII).lower() if ch.isalnum() or ch == "-").strip("-")


# --- PostgreSQL schema ------------------------------------------------------------------------------

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

# The ten tables the drill expects (drills/expectations.toml [postgresql].tables).
APP_TABLES = ("users", "recipes", "recipe_tags", "grocery_stores", "grocery_specials", "shopping_lists",
              "shopping_list_items", "favorites", "ocr_jobs", "alembic_version")
