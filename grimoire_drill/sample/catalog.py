"""The vocabulary samples are made of: OpenFoodFacts ingredients and categories, dishes, names, stores.

Declarative data (longer than a module usually is, on purpose): facts a reader checks against
Le Grimoire's import scripts, kept apart from the code that combines them.
"""

from __future__ import annotations

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

